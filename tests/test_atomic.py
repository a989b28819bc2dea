"""The one atomic write (src/wsvad/atomic.py) and that nothing else in src/wsvad replaces files."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from wsvad import atomic
from wsvad.atomic import atomic_path, temp_name, write_text_atomic

SRC = Path(__file__).resolve().parents[1] / "src" / "wsvad"


def test_the_target_is_replaced_and_no_temporary_file_is_left(tmp_path):
    target = tmp_path / "run.json"
    target.write_text("old")
    write_text_atomic(target, "new ü\n")
    assert target.read_bytes() == "new ü\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_an_error_while_writing_keeps_the_old_file_and_deletes_the_temporary(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old weights")
    with pytest.raises(RuntimeError, match="disk exploded"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk exploded")
    assert target.read_bytes() == b"old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_file_and_directory_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    write_text_atomic(tmp_path / "a.txt", "x")
    assert events == ["fsync-file", "rename", "fsync-dir"]


def test_two_writers_of_one_file_never_share_a_temporary_name(tmp_path):
    """config.py used a fixed ``config.yaml.tmp``: two writers truncated each other's file."""
    target = tmp_path / "config.yaml"
    texts = [f"writer {k}\n" * 2000 for k in range(8)]
    errors: list[BaseException] = []

    def write(text: str) -> None:
        try:
            for _ in range(20):
                write_text_atomic(target, text)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert target.read_text() in texts  # one writer's whole text, never a mix or a truncation
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]
    assert temp_name(target) != temp_name(target)


def test_a_255_byte_name_still_gets_a_temporary_name_that_fits(tmp_path):
    target = tmp_path / ("é" * 127 + "x")  # 255 bytes in UTF-8
    write_text_atomic(target, "long")
    assert target.read_text() == "long"
    assert len(os.fsencode(temp_name(target, ".mp4").name)) <= 255
    assert temp_name(target, ".mp4").name.endswith(".tmp.mp4")


def test_a_non_utf8_file_name_is_written(tmp_path):
    target = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.json"))
    write_text_atomic(target, "{}")
    assert os.listdir(bytes(tmp_path)) == [b"caf\xe9.json"]


def test_no_module_replaces_files_by_hand():
    """One way to replace a file: every ``os.replace``/``Path.replace``/``os.rename`` of a file
    lives in atomic.py (directory renames of the store and the bag cache are listed by name)."""
    pattern = re.compile(r"\bos\.replace\(|\.replace\((path|tmp|target|out|script|dest)\b|tempfile")
    allowed_dir_renames = {"pipeline/store.py", "train/cache.py"}  # os.rename of directories
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "atomic.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) or ("os.rename(" in line and rel not in allowed_dir_renames):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []
