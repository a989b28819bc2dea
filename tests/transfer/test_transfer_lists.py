"""Parsing the real published feature lists, and labels from benchmark names."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from wsvad.errors import WsvadError
from wsvad.transfer.formats import get_format
from wsvad.transfer.lists import (
    ListSpec,
    group_listed,
    read_entries,
    resolve_entry,
    split_from_list_name,
)
from wsvad.transfer.names import label_from_name


def test_read_entries_crlf_windows_list(kit):
    path = kit.lists / "ucf_crime/rtfm/ucf-i3d-test.list"
    assert path.read_bytes().count(b"\r\n") == 290  # the real file is CRLF
    entries = read_entries(path)
    assert len(entries) == 290
    assert entries[0] == "G:\\UCF_Test_ten_crop_i3d\\Abuse028_x264_i3d.npy"
    assert not any("\r" in e or e != e.strip() for e in entries)


def test_read_entries_without_final_newline(kit):
    path = kit.lists / "ucf_crime/ur-dmu/UCF_Test.list"
    assert not path.read_bytes().endswith(b"\n")
    entries = read_entries(path)
    assert len(entries) == 2900
    assert entries[-1] == "dataset/Testing_Normal_Videos_Anomaly/Normal_Videos_944_x264__9.npy"


def test_read_entries_errors_name_the_file(tmp_path):
    with pytest.raises(WsvadError, match=r"nope\.list: cannot read feature list"):
        read_entries(tmp_path / "nope.list")
    bad = tmp_path / "latin1.list"
    bad.write_bytes(b"caf\xe9.npy\n")
    with pytest.raises(
        WsvadError, match=r"latin1\.list: feature list is not UTF-8 text \(byte 3\)"
    ):
        read_entries(bad)


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("ucf-i3d.list", "train"),
        ("ucf-i3d-test.list", "test"),
        ("rgb.list", "train"),
        ("rgb_test.list", "test"),
        ("UCF_Train.list", "train"),
        ("XD_Test.list", "test"),
        ("shanghai-i3d-test-10crop.list", "test"),
    ],
)
def test_split_from_list_name(name, split):
    assert split_from_list_name(Path(name)) == split


def test_parse_names_of_every_real_list(kit):
    """Every entry of every real list parses, and gives the published number of videos and crops."""
    cases = [
        ("rtfm", "ucf_crime/rtfm/ucf-i3d.list", 1610, {1}),
        ("rtfm", "shanghaitech/rtfm/shanghai-i3d-test-10crop.list", 199, {1}),
        ("crops-per-file", "ucf_crime/ur-dmu/UCF_Train.list", 1610, {10}),
        ("crops-per-file", "xd_violence/rgb_test.list", 800, {5}),
        ("crops-per-file", "xd_violence/ur-dmu/XD_Train.list", 3954, {5}),
    ]
    for fmt_name, rel, n_videos, crops_per_video in cases:
        fmt = get_format(fmt_name)
        parsed = [
            fmt.parse_name(e.replace("\\", "/").rsplit("/", 1)[-1])
            for e in read_entries(kit.lists / rel)
        ]
        assert None not in parsed, rel
        per_video = Counter(vid for vid, _ in parsed)
        assert len(per_video) == n_videos, rel
        assert set(per_video.values()) == crops_per_video, rel
    assert get_format("rtfm").parse_name("Abuse028_x264_i3d.npy") == ("Abuse028_x264", 0)
    assert get_format("crops-per-file").parse_name("v=U6MC8JJJZSY__#1_label_G-0-0__4.npy") == (
        "v=U6MC8JJJZSY__#1_label_G-0-0",
        4,
    )
    assert get_format("vggish").parse_name(
        "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6__vggish.npy"
    )[0] == ("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6")
    assert get_format("video-features", "flow").parse_name("clip_01_flow.npy") == ("clip_01", 0)
    assert get_format("video-features", "flow").parse_name("clip_01_rgb.npy") is None
    assert get_format("sultani-c3d").parse_name("Abuse028_x264_C.txt") == ("Abuse028_x264", 0)


def test_group_listed_resolves_relative_then_by_name(kit, tmp_path):
    """UR-DMU entries are relative (dataset/<Folder>/...); a copy laid out differently is found by
    name."""
    lines = kit.raw_lines(kit.lists / "ucf_crime/ur-dmu/UCF_Test.list")[
        :20
    ]  # Abuse028, Abuse030: 10 crops each
    listed = tmp_path / "UCF_Test.list"
    listed.write_bytes(b"".join(lines).rstrip(b"\n"))  # no final newline, as published
    root = tmp_path / "feats"
    for line in lines[:10]:
        (root / line.decode().strip()).parent.mkdir(parents=True, exist_ok=True)
        (root / line.decode().strip()).write_bytes(b"x")
    for line in lines[10:]:
        (root / "flat" / kit.entry_name(line)).parent.mkdir(parents=True, exist_ok=True)
        (root / "flat" / kit.entry_name(line)).write_bytes(b"x")
    videos, bad = group_listed(
        [ListSpec(listed, "test")], root, get_format("crops-per-file").parse_name
    )
    assert bad == []
    assert list(videos) == ["Abuse028_x264", "Abuse030_x264"]
    assert videos["Abuse028_x264"].files[3] == root / "dataset/Abuse/Abuse028_x264__3.npy"
    assert videos["Abuse030_x264"].files[9] == root / "flat/Abuse030_x264__9.npy"
    assert videos["Abuse030_x264"].split == "test" and videos["Abuse030_x264"].problem is None


def test_group_listed_reports_missing_ambiguous_duplicate_and_foreign(tmp_path):
    root = tmp_path / "feats"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        (root / folder / "twin_i3d.npy").write_bytes(b"x")
    (root / "a" / "ok_i3d.npy").write_bytes(b"x")
    train, test = tmp_path / "train.list", tmp_path / "test.list"
    train.write_text(
        "C:\\x\\ok_i3d.npy\r\nC:\\x\\twin_i3d.npy\r\nC:\\x\\gone_i3d.npy\r\nC:\\x\\notes.txt\r\n"
    )
    test.write_text("/y/ok_i3d.npy\n")
    videos, bad = group_listed(
        [ListSpec(train, "train"), ListSpec(test, "test")], root, get_format("rtfm").parse_name
    )
    assert videos["gone"].problem == f"gone_i3d.npy not found under {root}"
    assert (
        videos["twin"].problem
        == f"twin_i3d.npy is ambiguous under {root} (2 files: a/twin_i3d.npy, b/twin_i3d.npy)"
    )
    assert videos["ok"].problem == "listed in both the train and the test list"
    assert bad == ["train.list:4: 'C:\\\\x\\\\notes.txt' is not a file name of this format"]
    assert resolve_entry(
        "G:\\feats\\ok_i3d.npy", root, {"ok_i3d.npy": [root / "a/ok_i3d.npy"]}
    ) == (root / "a/ok_i3d.npy", None)


def test_labels_from_names_match_published_counts(kit):
    """The naming rules give the published class balance of each real test list."""

    def labels(rel: str, fmt: str) -> Counter:
        ids = {
            get_format(fmt).parse_name(e.replace("\\", "/").rsplit("/", 1)[-1])[0]
            for e in read_entries(kit.lists / rel)
        }
        return Counter(label_from_name(v)[0] for v in ids)

    assert labels("ucf_crime/rtfm/ucf-i3d-test.list", "rtfm") == Counter({0: 150, 1: 140})
    assert labels("ucf_crime/rtfm/ucf-i3d.list", "rtfm") == Counter({0: 800, 1: 810})
    assert labels("shanghaitech/rtfm/shanghai-i3d-train-10crop.list", "rtfm") == Counter(
        {0: 175, 1: 63}
    )
    assert labels("xd_violence/rgb_test.list", "crops-per-file") == Counter({0: 300, 1: 500})
    assert label_from_name("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6") == (
        1,
        ("G", "B2", "B6"),
    )
    assert label_from_name("v=U6MC8JJJZSY__#1_label_B1-0-0") == (1, ("B1",))
    assert label_from_name("RoadAccidents001_x264") == (1, ("RoadAccidents",))
    assert label_from_name("Normal_Videos001_x264") == (0, ())
    assert label_from_name("my_clip") is None
