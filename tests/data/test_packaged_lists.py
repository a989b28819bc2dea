"""The official lists shipped in the package: byte-exact copies, checked before use."""

from __future__ import annotations

import hashlib

import pytest

from wsvad.data import packaged
from wsvad.errors import WsvadError


def test_every_packaged_file_matches_its_sha256_and_has_a_recorded_source():
    folder = packaged.lists_dir()
    sums = packaged.expected_sums()
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert files == set(sums) | {"SHA256SUMS", "SOURCES.md"}
    assert len(sums) == 129 and packaged.verify_all() == []
    sources = (folder / "SOURCES.md").read_text(encoding="utf-8")
    # every shipped list (not each of the 107 masks, which SOURCES.md covers as one folder)
    for rel in sums:
        if "test_frame_mask" not in rel:
            assert rel.rsplit("/", 1)[-1] in sources, rel
    # CRLF endings survived packaging byte for byte (RTFM's UCF list is CRLF on every line)
    raw = (folder / "ucf_crime/rtfm/ucf-i3d.list").read_bytes()
    assert raw.count(b"\r\n") == 1610 and hashlib.sha256(raw).hexdigest().startswith("b241d687")


def test_a_damaged_packaged_copy_is_refused_with_its_name(tmp_path, monkeypatch):
    copy = tmp_path / "benchmark_lists"
    (copy / "shanghaitech").mkdir(parents=True)
    (copy / "SHA256SUMS").write_text(f"{'0' * 64}  shanghaitech/SH_Train.txt\n")
    (copy / "shanghaitech" / "SH_Train.txt").write_text("01_001\n")
    monkeypatch.setattr(packaged, "lists_dir", lambda: copy)
    packaged.expected_sums.cache_clear()
    try:
        with pytest.raises(WsvadError, match=r"SH_Train.txt: the packaged copy of .* reinstall"):
            packaged.packaged_file("shanghaitech", ("SH_Train.txt",))
    finally:
        packaged.expected_sums.cache_clear()
