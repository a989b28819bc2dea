"""The synthetic surveillance dataset: determinism, UCF-Crime formats, visible events, resuming."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.data import load_dataset
from wsvad.data.synth import generate_synthetic_dataset
from wsvad.errors import WsvadError

TINY = {
    "preset": "tiny",
    "n_train": 6,
    "n_test": 6,
    "classes": ["Fighting", "Running", "Explosion"],
}


def _decode(path):
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "a"
    summary = generate_synthetic_dataset(root, seed=3, **TINY)
    assert summary.n_videos == 12 and summary.n_generated == 12
    return root


def test_synth_same_seed_same_bytes_other_seed_other_frames(synth_root, tmp_path):
    again = tmp_path / "b"
    generate_synthetic_dataset(again, seed=3, **TINY)
    files = sorted(p.relative_to(synth_root) for p in synth_root.rglob("*") if p.is_file())
    assert len(files) == 12 + 4
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (synth_root / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = tmp_path / "c"
    generate_synthetic_dataset(other, seed=4, **TINY)
    first = "Fighting/Fighting001_x264.mp4"
    assert not np.array_equal(_decode(synth_root / first)[:10], _decode(other / first)[:10])


def test_synth_is_read_by_the_ucf_adapter_with_no_problem(synth_root):
    meta = json.loads((synth_root / "synth.json").read_text())
    index = load_dataset("ucf", synth_root)
    assert index.problems == []
    assert (
        sorted((r.split, r.label) for r in index.records)
        == [("test", 0)] * 3 + [("test", 1)] * 3 + [("train", 0)] * 3 + [("train", 1)] * 3
    )
    assert (
        index.class_names
        == ["Normal", "Explosion", "Fighting", "Running"]
        == ["Normal", *meta["classes"]]
    )
    for rec in index.split("test"):
        events = meta["videos"][rec.video_id]["events"]
        assert rec.intervals == tuple((e["start"], e["end"]) for e in events)
        assert bool(rec.intervals) == (rec.label == 1)
    for rec in index.split("train"):  # weak supervision: training anomalies contain events too
        assert bool(meta["videos"][rec.video_id]["events"]) == (rec.label == 1)
    synthetic = load_dataset("synthetic", synth_root)
    assert (
        synthetic.problems == []
        and synthetic.records == index.records
        and synthetic.class_names == index.class_names
    )


def test_synth_writes_the_official_file_formats(synth_root):
    ann = (synth_root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").read_text()
    line = re.compile(r"^\w+_x264\.mp4  [A-Za-z]+  -?\d+  -?\d+  -?\d+  -?\d+  $")
    assert all(line.match(x) for x in ann.splitlines()) and ann.endswith("  \n")
    assert "Normal_Videos_004_x264.mp4  Normal  -1  -1  -1  -1  " in ann.splitlines()
    train = (synth_root / "Anomaly_Train.txt").read_text().splitlines()
    assert (
        train == sorted(train)
        and "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4" in train
    )
    assert "Fighting/Fighting001_x264.mp4" in train


def test_synth_events_are_visible_as_motion(synth_root):
    """Inside an annotated event the frames change much more than outside it."""
    meta = json.loads((synth_root / "synth.json").read_text())
    for vid, info in meta["videos"].items():
        frames = _decode(synth_root / info["path"]).astype(np.float32)
        assert len(frames) == info["n_frames"] and frames.shape[1:] == (72, 96, 3)
        motion = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # change into frame t+1
        for event in info["events"]:
            inside = motion[event["start"] : event["end"] - 1].mean()
            outside = np.delete(
                motion, np.arange(max(event["start"] - 1, 0), min(event["end"], motion.size))
            ).mean()
            assert inside > 1.5 * outside, (vid, event, inside, outside)


def test_synth_resumes_and_refuses_foreign_folders(synth_root, tmp_path):
    assert generate_synthetic_dataset(synth_root, seed=3, **TINY).n_generated == 0
    victim = synth_root / "Running" / "Running001_x264.mp4"
    original = victim.read_bytes()
    victim.unlink()
    assert generate_synthetic_dataset(synth_root, seed=3, **TINY).n_generated == 1
    assert victim.read_bytes() == original
    with pytest.raises(
        WsvadError,
        match=(
            f"^{synth_root}: holds a synthetic dataset made with other parameters; choose another "
            "--out$"
        ),
    ):
        generate_synthetic_dataset(synth_root, seed=4, **TINY)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("x")
    with pytest.raises(WsvadError, match="busy: exists and is not empty; choose another --out$"):
        generate_synthetic_dataset(tmp_path / "busy", seed=0, **TINY)


def test_synth_cli_and_parameter_errors(tmp_path, capsys):
    assert (
        run(
            [
                "synth",
                "--out",
                str(tmp_path / "s"),
                "--preset",
                "tiny",
                "--n-train",
                "2",
                "--n-test",
                "2",
                "--classes",
                "Running",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"{tmp_path / 's'}: 4 videos (4 written now)" in out
    assert load_dataset("ucf", tmp_path / "s").problems == []
    assert run(["synth", "--out", str(tmp_path / "t"), "--size", "97x72"]) == 1
    assert (
        "error: command line: size: width and height must be even and at least 32 "
        "(H.264 4:2:0) (got '97x72')" in capsys.readouterr().err
    )
    with pytest.raises(
        WsvadError,
        match=(
            "classes: must be distinct names among Fighting, Running, Explosion, "
            "AbandonedObject; got Riot"
        ),
    ):
        generate_synthetic_dataset(tmp_path / "u", classes=["Riot"])


def test_synthetic_adapter_without_provenance_warns_and_uses_the_listed_classes(tmp_path, touch):
    root = tmp_path / "s"
    touch(
        root,
        ["Running/Running001_x264.mp4", "Testing_Normal_Videos_Anomaly/Normal_Videos_001_x264.mp4"],
    )
    (root / "Anomaly_Train.txt").write_text("")
    (root / "Anomaly_Test.txt").write_text(
        "Running/Running001_x264.mp4\nTesting_Normal_Videos_Anomaly/Normal_Videos_001_x264.mp4\n"
    )
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Running001_x264.mp4  Running  3  9  -1  -1  \n"
    )
    index = load_dataset("synthetic", root)
    assert [(p.severity, p.message) for p in index.problems] == [
        ("warning", f"{root}/synth.json: not found; using the classes found in the lists")
    ]
    assert index.class_names == ["Normal", "Running"] and index.by_id()[
        "Running001_x264"
    ].intervals == ((3, 10),)
    (root / "synth.json").write_text("{}")
    assert load_dataset("synthetic", root).problems[0].message == (
        f"{root}/synth.json: cannot read the class list ('classes'); using the classes found "
        "in the lists"
    )
