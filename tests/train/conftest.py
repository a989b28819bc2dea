"""A tiny feature store with planted anomalies, written with FeatureStore itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsvad.pipeline.store import FeatureStore

SNIPPET = 16


def write_planted_store(
    path: Path,
    n_train: int = 12,
    n_test: int = 6,
    dim: int = 16,
    crops: int = 2,
    shift: float = 1.5,
    seed: int = 0,
    labels_in_attrs: bool = True,
) -> FeatureStore:
    """Normal videos: N(0, 1) features. Abnormal ones: a run of snippets shifted by ``shift`` in the
    first quarter of the dimensions. ``n_train``/``n_test`` videos per label; test videos carry the
    planted run as frame intervals. Ids: ``train_normal_03``, ``test_abnormal_01``..."""
    rng = np.random.default_rng(seed)
    store = FeatureStore.create(
        path,
        {
            "feature_shape": [dim],
            "dtype": "float32",
            "crops": crops,
            "backbone": "synthetic",
            "config_hash": f"planted-{seed}-{dim}-{crops}",
            "dataset": "planted",
            "snippet_len": SNIPPET,
            "stride": SNIPPET,
            "tail": "drop",
        },
    )
    for split, count in (("train", n_train), ("test", n_test)):
        for label in (0, 1):
            for i in range(count):
                n = int(rng.integers(24, 48))
                feats = rng.normal(size=(n, crops, dim)).astype(np.float32)
                intervals: list[list[int]] = []
                if label:
                    length = int(rng.integers(3, 8))
                    start = int(rng.integers(0, n - length))
                    feats[start : start + length, :, : dim // 4] += shift
                    intervals = [[start * SNIPPET, (start + length) * SNIPPET]]
                vid = f"{split}_{'abnormal' if label else 'normal'}_{i:02d}"
                attrs = {"n_frames": n * SNIPPET + 5, "fps": 25.0}
                if labels_in_attrs:
                    attrs.update(
                        split=split,
                        label=label,
                        classes=["Planted"] if label else [],
                        intervals=intervals if split == "test" else None,
                    )
                store.write_video(vid, feats, attrs)
    return store


@pytest.fixture
def planted_store(tmp_path) -> FeatureStore:
    return write_planted_store(tmp_path / "store")


@pytest.fixture
def make_planted_store(tmp_path):
    """Factory: ``make_planted_store("name", n_train=2, ...)`` -> FeatureStore under tmp_path."""

    def factory(name: str = "store", **kwargs) -> FeatureStore:
        return write_planted_store(tmp_path / name, **kwargs)

    return factory
