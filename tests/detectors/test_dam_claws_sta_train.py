"""DAM, CLAWS and STA end to end through ``wsvad train`` (sampler, start_epoch, checkpoint, scoring)
on a tiny planted feature store written with FeatureStore itself."""

import json

import numpy as np
import pytest
import torch

from wsvad.cli import run
from wsvad.detectors.checkpoint import load_detector
from wsvad.errors import EXIT_OK
from wsvad.pipeline.store import FeatureStore

SNIPPET = 16


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _planted_store(path, feature_shape, n_per_label=10, shift=2.0, seed=0):
    """One crop; abnormal videos get ``shift`` added to a run of 4-8 snippets (first half of the last axis)."""
    rng = np.random.default_rng(seed)
    store = FeatureStore.create(
        path,
        {
            "feature_shape": list(feature_shape),
            "dtype": "float32",
            "crops": 1,
            "backbone": "synthetic",
            "config_hash": f"planted-{seed}-{feature_shape}",
            "dataset": "planted",
            "snippet_len": SNIPPET,
            "stride": SNIPPET,
            "tail": "drop",
        },
    )
    half = feature_shape[-1] // 2
    for split in ("train", "test"):
        for label in (0, 1):
            for i in range(n_per_label):
                n = int(rng.integers(24, 40))
                feats = rng.normal(size=(n, 1, *feature_shape)).astype(np.float32)
                intervals = []
                if label:
                    length = int(rng.integers(4, 9))
                    start = int(rng.integers(0, n - length))
                    feats[start : start + length, ..., :half] += shift
                    intervals = [[start * SNIPPET, (start + length) * SNIPPET]]
                attrs = {
                    "n_frames": n * SNIPPET,
                    "fps": 25.0,
                    "split": split,
                    "label": label,
                    "classes": ["Planted"] if label else [],
                    "intervals": intervals if split == "test" else None,
                }
                store.write_video(f"{split}_{label}_{i:02d}", feats, attrs)
    return store


@pytest.mark.parametrize(
    "name, feature_shape, settings",
    [
        (
            "dam",
            (7, 8),
            [
                "--set",
                "detector.params={hidden: 16, mlp_hidden: [16]}",
                "--set",
                "bags.count=8",
                "--set",
                "bags.pool=max",
                "--set",
                "sampler.batch_per_class=5",
                "--set",
                "optim.lr=3.0e-3",
            ],
        ),
        (
            "claws",
            (16,),
            [
                "--set",
                "detector.params={hidden: [32, 8], window: 8}",
                "--set",
                "sampler.window=8",
                "--set",
                "sampler.windows_per_step=4",
                "--set",
                "optim.lr=1.0e-3",
            ],
        ),
        (
            "sta",
            (16,),
            [
                "--set",
                "detector.params={rnn_hidden: 16, test_segments: 0, checkpoint_videos: 0}",
                "--set",
                "bags.count=8",
                "--set",
                "sampler.batch_per_class=5",
                "--set",
                "optim.lr=3.0e-3",
            ],
        ),
    ],
)
def test_train_end_to_end(name, feature_shape, settings, tmp_path, capsys):
    store = _planted_store(tmp_path / "store", feature_shape)
    out = tmp_path / "run"
    code = run(
        [
            "train",
            "--store",
            str(store.path),
            "--out",
            str(out),
            "--detector",
            name,
            "--seed",
            "0",
            "--iterations",
            "150",
            *settings,
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["quick_frame_auc"] > 0.85, run_json["quick_frame_auc"]
    detector, meta = load_detector(out / "model")
    assert meta["detector"] == name and tuple(meta["feature_shape"]) == feature_shape
    scores = np.load(out / "scores.npz")
    assert len(scores.files) == 20
    assert all(
        0.0 <= float(scores[k].min()) and float(scores[k].max()) <= 1.0 for k in scores.files
    )
    if name == "claws":  # the per-epoch clustering state was computed and saved with the weights
        assert detector.epoch_centres.shape == (20, 2, 32)
        assert float(detector.epoch_segments.min()) >= 24
