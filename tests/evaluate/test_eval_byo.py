"""Bring your own footage (issue #16.2): extract unlabelled videos, label them afterwards, train on
the labels, evaluate the run: the test videos and their ground truth are the run's dataset's, not
the ``split``/``label`` attrs the store froze at extraction."""

from __future__ import annotations

import json

import pytest

from wsvad.cli import run as cli
from wsvad.errors import EXIT_OK
from wsvad.pipeline.store import FeatureStore

# id -> (label, split, intervals): 4 training and 4 test videos of 48 frames (3 snippets).
LABELS = {
    "n0": (0, "train", ""),
    "n1": (0, "train", ""),
    "a0": (1, "train", ""),
    "a1": (1, "train", ""),
    "n2": (0, "test", ""),
    "n3": (0, "test", ""),
    "a2": (1, "test", "16-40"),
    "a3": (1, "test", "0-20"),
}


def test_extract_then_label_then_train_then_evaluate(tmp_path, make_video, monkeypatch, capsys):

    monkeypatch.setenv("COLUMNS", "200")
    for i, vid in enumerate(LABELS):
        make_video(f"footage/{vid}.mp4", n_frames=48, size=(48, 32), seed=i)
    root, store, run = tmp_path / "footage", tmp_path / "store", tmp_path / "run"
    extract = ["extract", "--dataset", "folder", "--root", str(root), "--out", str(store)]
    extract += ["--crops", "1", "--backbone", "random3d", "--workers", "0", "--resize", "short48"]
    assert cli([*extract, "--set", "crop_size=32", "--set", "backbone_options.dim=8"]) == EXIT_OK
    # Extracted before labelling: every video is an unlabelled test video in the store.
    frozen = FeatureStore.open(store).video_attrs("n0")
    assert (frozen["split"], frozen["label"]) == ("test", -1)

    rows = [
        f"{vid}.mp4,{label},{'Fight' if label else ''},{iv},{split}"
        for vid, (label, split, iv) in LABELS.items()
    ]
    (root / "labels.csv").write_text("video,label,class,intervals,split\n" + "\n".join(rows) + "\n")
    train = ["train", "--store", str(store), "--dataset", "folder", "--root", str(root)]
    train += ["--detector", "mil", "--out", str(run), "--iterations", "3"]
    assert cli([*train, "--set", "sampler.batch_per_class=2"]) == EXIT_OK
    capsys.readouterr()

    assert cli(["evaluate", "--run", str(run), "--no-plots", "--no-report"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "NOT the full-protocol figures" not in err and "not evaluated" not in err
    report = json.loads((run / "eval" / "metrics.json").read_text())
    assert report["coverage"] == {"test_videos": 4, "matched": 4, "problems": []}
    metrics = report["metrics"]
    assert (metrics["n_videos"], metrics["n_abnormal_videos"], metrics["n_frames"]) == (4, 2, 192)
    assert metrics["n_anomalous_frames"] == (40 - 16) + 20  # a2 [16, 40), a3 [0, 20)
    # The figure training reported on its test videos is the one evaluate computes.
    quick = json.loads((run / "run.json").read_text())["quick_frame_auc"]
    assert metrics["auc"] == pytest.approx(quick, abs=1e-6)
    assert f"{100 * metrics['auc']:.2f}" in out

    # With the store gone, the dataset's videos give the frame counts: the same figures.
    store.rename(tmp_path / "store.moved")
    assert cli(["evaluate", "--run", str(run), "--no-plots", "--no-report"]) == EXIT_OK
    again = json.loads((run / "eval" / "metrics.json").read_text())
    assert again["metrics"]["auc"] == metrics["auc"] and again["coverage"]["matched"] == 4
    (tmp_path / "store.moved").rename(store)
    capsys.readouterr()

    # The labels live in the dataset: without its root the run cannot be evaluated as trained.
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(info | {"root": str(tmp_path / "moved")}))
    assert cli(["evaluate", "--run", str(run), "--no-plots", "--no-report"]) == 1
    assert (
        f"{tmp_path / 'moved'}: the root of the dataset the run took its labels from (run.json) "
        "is not a directory; pass --root"
    ) in capsys.readouterr().err
