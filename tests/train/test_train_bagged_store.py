"""Stores that already hold segments (Sultani's 32 segment means, `wsvad extract --segments`)."""

from __future__ import annotations

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_ERROR, EXIT_OK
from wsvad.pipeline.bags import segment_into_bags
from wsvad.pipeline.store import FeatureStore

T = 4


@pytest.fixture
def bagged_store(tmp_path):
    """Each video's raw snippets are reduced to T sultani segments, as `wsvad extract --segments`
    does."""
    rng = np.random.default_rng(0)
    store = FeatureStore.create(
        tmp_path / "store",
        {
            "feature_shape": [8],
            "dtype": "float32",
            "crops": 1,
            "backbone": "synthetic",
            "config_hash": "bagged",
            "snippet_len": 16,
            "stride": 16,
            "tail": "drop",
            "bagged": {"rule": "sultani", "T": T},
        },
    )
    raw_counts = {}
    for split in ("train", "test"):
        for label in (0, 1):
            for i in range(6):
                n = int(rng.integers(9, 20))
                raw = rng.normal(size=(n, 1, 8)).astype(np.float32)
                if label:
                    raw[n // 2 :, :, :2] += 3.0  # the anomaly fills the second half
                vid = f"{split}_{label}_{i}"
                raw_counts[vid] = n
                store.write_video(
                    vid,
                    segment_into_bags(raw, T, "sultani"),
                    {
                        "n_frames": n * 16,
                        "n_snippets_raw": n,
                        "split": split,
                        "label": label,
                        "classes": ["X"] if label else [],
                        "intervals": ([[n // 2 * 16, n * 16]] if label else [])
                        if split == "test"
                        else None,
                    },
                )
    return store, raw_counts


def test_bagged_store_trains_on_its_segments_and_scores_every_raw_snippet(
    bagged_store, tmp_path, capsys
):
    store, raw_counts = bagged_store
    out = tmp_path / "run"
    args = [
        "train",
        "--store",
        str(store.path),
        "--out",
        str(out),
        "--iterations",
        "80",
        "--set",
        f"bags.count={T}",
        "--set",
        "sampler.batch_per_class=4",
        "--set",
        "optim.lr=0.01",
    ]
    assert run(args) == EXIT_OK
    cached = np.asarray(
        __import__("zarr").open_group(str(next((store.path / "bags").iterdir())), mode="r")["bags"]
    )
    ids = store.video_ids()
    # the cache is the identity on the stored segments (no second pooling or normalisation)
    np.testing.assert_array_equal(cached[ids.index("train_1_0")], store.read("train_1_0"))
    scores = np.load(out / "scores.npz")
    assert sorted(scores.files) == sorted(v for v in raw_counts if v.startswith("test"))
    for vid in scores.files:  # segment scores mapped back to the raw snippets the segments pooled
        assert scores[vid].shape == (raw_counts[vid],)
    auc = float(capsys.readouterr().out.split("quick frame AUC (test) ")[1].split()[0])
    assert auc > 0.9  # the anomaly is planted in whole segments' worth of snippets


def test_bagged_store_refuses_another_bag_count(bagged_store, tmp_path, capsys):
    store, _ = bagged_store
    code = run(
        [
            "train",
            "--store",
            str(store.path),
            "--out",
            str(tmp_path / "r"),
            "--iterations",
            "5",
            "--set",
            "bags.count=32",
        ]
    )
    assert code == EXIT_ERROR
    assert (
        f"the store already holds {T} sultani segments per video; train it with bags.count={T} "
        "(got 32)" in capsys.readouterr().err
    )
