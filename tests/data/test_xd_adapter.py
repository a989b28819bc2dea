"""XD-Violence: names -> labels, the real annotation file, split from the real lists or from
folders."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from wsvad.data import load_dataset
from wsvad.data.listfiles import video_stem
from wsvad.data.xd import parse_xd_label


@pytest.fixture(scope="module")
def xd_root(benchmark_lists, tmp_path_factory):
    """Videos unpacked as users do (Train/ and Test/ of empty placeholder .mp4), the real
    annotations.txt at the root; the real feature lists kept aside in lists/."""
    src = benchmark_lists / "xd_violence"
    base = tmp_path_factory.mktemp("xd")
    root = base / "XD-Violence"
    for folder, listing in (("Train", "rgb.list"), ("Test", "rgb_test.list")):
        (root / folder).mkdir(parents=True)
        for name in {video_stem(line) for line in (src / listing).read_text().split()}:
            (root / folder / f"{name}.mp4").touch()
    shutil.copy(src / "annotations.txt", root / "annotations.txt")
    (base / "lists").mkdir()
    for name in ("rgb.list", "rgb_test.list"):
        shutil.copy(src / name, base / "lists" / name)
    return root


def _check_counts(index):
    counts = Counter((r.split, r.label) for r in index.records)
    assert counts == {("train", 1): 1905, ("train", 0): 2049, ("test", 1): 500, ("test", 0): 300}
    assert sum(1 for r in index.split("test") if r.intervals) == 500


def test_xd_split_from_train_and_test_folders(xd_root):
    index = load_dataset("xd", xd_root)
    assert index.problems == []
    _check_counts(index)
    by_id = index.by_id()
    assert index.class_names == ["Normal", "B1", "B2", "B4", "B5", "B6", "G"]
    # one of the 14 annotation names written with ".mp4"
    assert by_id["v=U6MC8JJJZSY__#1_label_G-0-0"].intervals == ((150, 779),)
    rec = by_id["v=S-7rRLrxnVQ__#1_label_B4-0-0"]
    assert rec.intervals == ((0, 1517), (1970, 3038)) and rec.classes == ("B4",) and rec.label == 1
    assert rec.rel_path == "Test/v=S-7rRLrxnVQ__#1_label_B4-0-0.mp4"
    assert by_id["Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6"].classes == ("G", "B2", "B6")
    normal_test = next(r for r in index.split("test") if r.label == 0)
    assert normal_test.intervals == () and normal_test.classes == ()
    assert all(r.intervals is None for r in index.split("train"))


def test_xd_split_from_the_real_feature_lists(xd_root):
    lists = xd_root.parent / "lists"
    index = load_dataset(
        "xd", xd_root, train_list=lists / "rgb.list", test_list=lists / "rgb_test.list"
    )
    assert index.problems == []
    _check_counts(index)


def test_xd_label_codes():
    assert parse_xd_label("A.Beautiful.Mind.2001__#00-01-45_00-02-50_label_A") == (0, ())
    assert parse_xd_label("x__#1_label_B1-0-0") == (1, ("B1",))
    with pytest.raises(
        ValueError,
        match=r"^x__#1_label_B3-0-0: unknown label code\(s\) B3; known: A, B1, B2, B4, B5, B6, G$",
    ):
        parse_xd_label("x__#1_label_B3-0-0")
    with pytest.raises(ValueError, match=r"^clip: no '_label_<codes>' suffix$"):
        parse_xd_label("clip")


def test_xd_errors(tmp_path):
    root = tmp_path / "xd"
    for rel in (
        "Train/a__#1_label_B1-0-0.mp4",
        "Test/b__#1_label_G-0-0.mp4",
        "Test/c__#1_label_A.mp4",
        "Test/d__#1_label_B2-0-0.mp4",
        "Test/e__#1_label_Q-0-0.mp4",
        "misc/f__#1_label_A.mp4",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()
    (root / "annotations.txt").write_text(
        "a__#1_label_B1-0-0 10 20\nb__#1_label_G-0-0 5\nc__#1_label_A.mp4 1 9\nz__#1_label_G-0-0 "
        "3 4\nd__#1_label_B2-0-0 9 9"
    )
    index = load_dataset("xd", root)
    got = sorted((p.kind, p.message) for p in index.problems)
    ann = f"{root}/annotations.txt"
    assert got == [
        (
            "annotated-not-in-test",
            "annotations.txt:1: a__#1_label_B1-0-0 is annotated but a training video",
        ),
        (
            "annotated-not-in-test",
            "annotations.txt:4: z__#1_label_G-0-0 is annotated but not found among the videos",
        ),
        (
            "bad-annotation-line",
            f"{ann}:2: expected '<video> s1 e1 [s2 e2 ...]' with frame-number pairs, got "
            "'b__#1_label_G-0-0 5'",
        ),
        ("bad-interval", f"{ann}:5: d__#1_label_B2-0-0: empty or reversed interval(s) 9-9"),
        (
            "bad-name",
            "Test/e__#1_label_Q-0-0.mp4: e__#1_label_Q-0-0: unknown label code(s) Q; known: A, "
            "B1, B2, B4, B5, B6, G",
        ),
        (
            "missing-annotation",
            "Test/b__#1_label_G-0-0.mp4: violent test video has no line in annotations.txt",
        ),
        (
            "missing-annotation",
            "Test/d__#1_label_B2-0-0.mp4: violent test video has no line in annotations.txt",
        ),
        (
            "normal-with-intervals",
            "annotations.txt:3: normal video c__#1_label_A has anomalous intervals",
        ),
        (
            "unknown-split",
            "misc/f__#1_label_A.mp4: cannot tell its split (no rgb.list/rgb_test.list and no "
            "train/test folder above it)",
        ),
    ]
    assert sorted(index.by_id()) == ["a__#1_label_B1-0-0"]


def test_xd_urdmu_annotation_without_mp4_gives_the_same_intervals(xd_root, benchmark_lists):
    official = {r.video_id: r.intervals for r in load_dataset("xd", xd_root).split("test")}
    index = load_dataset(
        "xd", xd_root, annotations=benchmark_lists / "xd_violence/ur-dmu/XD_Annotation.txt"
    )
    assert index.problems == []
    assert {r.video_id: r.intervals for r in index.split("test")} == official
