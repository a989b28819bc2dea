"""The folder adapter: any directory of videos and frame folders, with or without labels.csv."""

from __future__ import annotations

import pytest

from wsvad.data import load_dataset
from wsvad.data.folder import parse_intervals


@pytest.fixture
def footage(tmp_path, touch):
    root = tmp_path / "my_videos"
    touch(
        root,
        [
            "cam1/a.mp4",
            "cam1/b.avi",
            "c.mkv",
            "frames/d/0001.jpg",
            "frames/d/0002.jpg",
            "notes.txt",
        ],
    )
    return root


def test_folder_without_labels_is_all_unlabelled_test_videos(footage):
    index = load_dataset("folder", footage)
    assert index.problems == []
    assert [(r.video_id, r.rel_path, r.split, r.label, r.intervals) for r in index.records] == [
        ("c", "c.mkv", "test", -1, None),
        ("cam1__a", "cam1/a.mp4", "test", -1, None),
        ("cam1__b", "cam1/b.avi", "test", -1, None),
        ("frames__d", "frames/d", "test", -1, None),
    ]
    assert index.class_names == ["Normal"]


def test_folder_labels_csv(footage):
    (footage / "labels.csv").write_text(
        "video,label,class,intervals,split\r\n"
        "cam1/a.mp4,1,Theft,10-50; 80-120,test\r\n"
        "cam1__b,0,,,train\r\n"
        "c,1,Fall,,test\r\n"
        "frames/d,1,,,train\r\n"
    )
    index = load_dataset("folder", footage)
    assert index.problems == []
    by_id = index.by_id()
    assert by_id["cam1__a"].intervals == ((10, 50), (80, 120)) and by_id["cam1__a"].classes == (
        "Theft",
    )
    assert (
        by_id["cam1__b"].split == "train"
        and by_id["cam1__b"].label == 0
        and by_id["cam1__b"].intervals is None
    )
    assert (
        by_id["c"].label == 1 and by_id["c"].intervals is None
    )  # abnormal test video without frame GT
    assert by_id["frames__d"].classes == ("Anomaly",)
    assert index.class_names == ["Normal", "Anomaly", "Fall", "Theft"]


def test_folder_labels_csv_errors(footage):
    (footage / "labels.csv").write_text(
        "video,label,class,intervals\n"
        "cam1/a.mp4,2,,\n"
        "cam1/b.avi,1,,50-10\n"
        "c.mkv,0,,1-5\n"
        "gone.mp4,0,,\n"
    )
    index = load_dataset("folder", footage)
    got = sorted((p.severity, p.kind, p.message) for p in index.problems)
    assert got == [
        (
            "error",
            "bad-interval",
            "labels.csv:3: interval '50-10' is empty or reversed (end is exclusive)",
        ),
        (
            "error",
            "bad-labels-csv",
            "labels.csv:2: label must be 0 or 1 and split train or test, got label='2' "
            "split='test'",
        ),
        (
            "error",
            "missing-video",
            f"labels.csv:5: gone.mp4 is labelled but not found under {footage}",
        ),
        ("error", "normal-with-intervals", "labels.csv:4: c has label 0 but anomalous intervals"),
        ("warning", "unlabelled-video", "frames/d: not in labels.csv; label unknown"),
    ]
    (footage / "labels.csv").write_text("name,y\nx,1\n")
    assert [p.message for p in load_dataset("folder", footage).problems] == [
        f"{footage}/labels.csv: header must name at least 'video' and 'label' columns, got name,y"
    ]


def test_parse_intervals_errors():
    assert parse_intervals("") == ()
    assert parse_intervals("80-120;10-50") == ((10, 50), (80, 120))
    with pytest.raises(ValueError, match=r"^interval '10:50' is not 'start-end'$"):
        parse_intervals("10:50")
