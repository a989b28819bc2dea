"""UCF-Crime adapter: the real official lists and their shared variants, miniature layouts, every
error."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from wsvad.data import load_dataset
from wsvad.data.ucf import UCF_CLASSES
from wsvad.errors import WsvadError

ANN = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


def _facts(index):
    return {r.video_id: (r.split, r.label, r.classes, r.intervals) for r in index.records}


def test_ucf_real_lists_counts_labels_and_intervals(ucf_real_root):
    index = load_dataset("ucf", ucf_real_root)
    assert index.problems == []
    counts = Counter((r.split, r.label) for r in index.records)
    assert counts == {("train", 1): 810, ("train", 0): 800, ("test", 1): 140, ("test", 0): 150}
    assert index.class_names == ["Normal", *UCF_CLASSES] and len(index.class_names) == 14
    by_id = index.by_id()
    # `Abuse028_x264.mp4  Abuse  165  240  -1  -1`: 0-based, end inclusive -> half-open [165, 241)
    assert by_id["Abuse028_x264"].intervals == ((165, 241),)
    assert by_id["Abuse028_x264"].classes == ("Abuse",)
    assert by_id["Abuse028_x264"].rel_path == "Abuse/Abuse028_x264.mp4"
    assert by_id["Abuse028_x264"].path == (ucf_real_root / "Abuse/Abuse028_x264.mp4").resolve()
    assert by_id["Arson011_x264"].intervals == ((150, 421), (680, 1268))
    assert (
        by_id["Normal_Videos_003_x264"].intervals == ()
        and by_id["Normal_Videos_003_x264"].label == 0
    )
    assert (
        by_id["Normal_Videos001_x264"].split == "train"
        and by_id["Normal_Videos001_x264"].intervals is None
    )
    assert by_id["Abuse001_x264"].intervals is None and by_id["Abuse001_x264"].label == 1
    assert sum(1 for r in index.records if r.intervals and len(r.intervals) == 2) == 16
    per_class = Counter(r.classes[0] for r in index.split("test") if r.label)
    assert (
        per_class["Explosion"] == 21
        and per_class["Abuse"] == 2
        and per_class["RoadAccidents"] == 23
    )


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(
            {
                "train_list": "variants/salva-u_crlf/Anomaly_Train.txt",
                "annotations": "variants/salva-u_crlf/Temporal_Anomaly_Annotation.txt",
            },
            id="crlf",
        ),
        pytest.param(
            {"annotations": "variants/vadclip/Temporal_Anomaly_Annotation.txt"}, id="vadclip-no-mp4"
        ),
        pytest.param(
            {"train_list": "rtfm/ucf-i3d.list", "test_list": "rtfm/ucf-i3d-test.list"},
            id="rtfm-windows-crlf",
        ),
        pytest.param(
            {
                "train_list": "ur-dmu/UCF_Train.list",
                "test_list": "ur-dmu/UCF_Test.list",
                "annotations": "ur-dmu/UCF_Annotation.txt",
            },
            id="urdmu-crops-nframes",
        ),
    ],
)
def test_ucf_shared_variants_give_the_official_records(ucf_real_root, benchmark_lists, options):
    official = _facts(load_dataset("ucf", ucf_real_root))
    given = {k: benchmark_lists / "ucf_crime" / v for k, v in options.items()}
    index = load_dataset("ucf", ucf_real_root, **given)
    assert index.problems == []
    assert _facts(index) == official


def _mini(touch, root: Path, train: str, test: str, ann: str, videos: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Anomaly_Train.txt").write_bytes(train.encode())
    (root / "Anomaly_Test.txt").write_bytes(test.encode())
    (root / ANN).write_bytes(ann.encode())
    touch(root, videos)
    return root


def test_ucf_finds_videos_in_part_folders_and_tolerates_format_quirks(tmp_path, touch):
    root = _mini(
        touch,
        tmp_path / "UCF_Crimes",
        # a label column, CRLF
        "Abuse/Abuse001_x264.mp4 1\r\n"
        "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4  \r\n",
        # no final newline
        "Abuse\\Abuse028_x264.mp4\nTesting_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4",
        "Abuse028_x264.mp4  Abuse  165  240  -1  -1  \r\n"
        "Normal_Videos_003_x264.mp4  Normal  -1  -1  -1  -1  ",
        [
            "Anomaly-Videos-Part-1/Abuse/Abuse001_x264.mp4",
            "Anomaly-Videos-Part-1/Abuse/Abuse028_x264.mp4",
            "Training_Normal_Videos_Anom/Normal_Videos001_x264.mp4",
            "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4",
        ],
    )
    index = load_dataset("ucf", root)
    assert index.problems == []
    by_id = index.by_id()
    assert by_id["Abuse001_x264"].rel_path == "Anomaly-Videos-Part-1/Abuse/Abuse001_x264.mp4"
    assert (
        by_id["Normal_Videos001_x264"].rel_path
        == "Training_Normal_Videos_Anom/Normal_Videos001_x264.mp4"
    )
    assert (
        by_id["Abuse028_x264"].intervals == ((165, 241),) and by_id["Abuse028_x264"].split == "test"
    )
    assert by_id["Normal_Videos_003_x264"].intervals == ()
    assert index.class_names == ["Normal", *UCF_CLASSES]


def test_ucf_reports_every_inconsistency_with_its_file_and_reason(tmp_path, touch):
    root = _mini(
        touch,
        tmp_path / "bad",
        "Abuse/Abuse001_x264.mp4\nAbuse/Abuse001_x264.mp4\nArrest/Arrest001_x264.mp4\n"
        "Fighting/Fighting003_x264.mp4\nfoo bar\n",
        "Abuse/Abuse028_x264.mp4\nArson/Arson011_x264.mp4\nFighting/Fighting003_x264.mp4\n"
        "Burglary/Burglary005_x264.mp4\nweird.mp4\n",
        "Abuse028_x264.mp4  Abuse  165  240  -1  -1  \n"
        "Arson011_x264.mp4  Arson  150  x  -1  -1  \n"
        "Burglary005_x264.mp4  Burglary  500  100  -1  -1  \n"
        "Arrest001_x264.mp4  Arrest  10  20  -1  -1  \n"
        "Ghost001_x264.mp4  Ghost  1  2  -1  -1  \n",
        [
            "Abuse/Abuse001_x264.mp4",
            "Abuse/Abuse028_x264.mp4",
            "Arson/Arson011_x264.mp4",
            "Fighting/Fighting003_x264.mp4",
            "Burglary/Burglary005_x264.mp4",
            "weird.mp4",
        ],
    )
    index = load_dataset("ucf", root)
    messages = {(p.kind, p.severity): p.message for p in index.problems}
    kinds = Counter(p.kind for p in index.problems)
    assert kinds == {
        "duplicate": 1,
        "bad-list-line": 2,
        "missing-video": 1,
        "train-test-overlap": 1,
        "bad-annotation-line": 1,
        "bad-interval": 1,
        "missing-annotation": 2,
        "annotated-not-in-test": 2,
    }
    assert messages[("duplicate", "warning")].endswith(
        "Anomaly_Train.txt:2: Abuse001_x264 listed again (first on line 1)"
    )
    assert (
        messages[("missing-video", "error")]
        == f"{root}/Anomaly_Train.txt:3: Arrest001_x264 is listed but no video file or frame "
        f"folder is under {root}"
    )
    assert (
        messages[("train-test-overlap", "error")]
        == f"{root}/Anomaly_Test.txt:3: Fighting003_x264 is also in the train list"
    )
    assert (
        messages[("bad-annotation-line", "error")]
        == f"{root}/{ANN}:2: expected '<video> <Class> s1 e1 [s2 e2]', "
        "got 'Arson011_x264.mp4  Arson  150  x  -1  -1'"
    )
    assert (
        messages[("bad-interval", "error")]
        == f"{root}/{ANN}:3: interval 500-100 of Burglary005_x264 is invalid"
    )
    annotated = sorted(p.message for p in index.problems if p.kind == "annotated-not-in-test")
    assert annotated == [
        f"{ANN}:4: Arrest001_x264 is annotated but in the train list",
        f"{ANN}:5: Ghost001_x264 is annotated but in no split list",
    ]
    missing = sorted(p.message for p in index.problems if p.kind == "missing-annotation")
    assert missing == [
        "Arson011_x264: abnormal test video has no line in " + ANN,
        f"{ANN}:3: abnormal test video Burglary005_x264 has no interval",
    ]
    bad_lines = sorted(p.message for p in index.problems if p.kind == "bad-list-line")
    assert bad_lines == [
        f"{root}/Anomaly_Test.txt:5: cannot tell the class of 'weird.mp4' (expected "
        "<Class>/<video>.mp4)",
        f"{root}/Anomaly_Train.txt:5: not a video path: 'foo bar'",
    ]
    assert sorted(index.by_id()) == ["Abuse001_x264", "Abuse028_x264", "Fighting003_x264"]
    assert all(p.severity == "error" for p in index.errors) and len(index.errors) == 10


def test_ucf_empty_root_is_one_error_and_lists_come_from_the_package(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(WsvadError, match=f"^no videos found under {root} "):
        load_dataset("ucf", root)
    # only one video, no list or annotation: the official ones shipped with wsvad label it
    (root / "Abuse").mkdir()
    (root / "Abuse" / "Abuse028_x264.mp4").write_bytes(b"")
    index = load_dataset("ucf", root)
    [record] = index.records
    assert (record.video_id, record.split, record.label, record.intervals) == (
        "Abuse028_x264",
        "test",
        1,
        ((165, 241),),
    )
    assert {p.kind for p in index.problems} == {"missing-video"}
    assert len(index.problems) == 1899
    (root / "Anomaly_Train.txt").write_bytes(b"\xff\xfe\x00bad")  # a list of its own wins
    index = load_dataset("ucf", root)
    unreadable = [p for p in index.problems if p.kind == "unreadable-list"]
    assert [p.message for p in unreadable] == [f"{root}/Anomaly_Train.txt: not UTF-8 text (byte 0)"]
