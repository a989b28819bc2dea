"""Training on CUDA (``make test-gpu``; without a GPU these skip, saying why): a run learns the
planted anomalies as on CPU, and its checkpoint loads on a CPU-only machine."""

from __future__ import annotations

import numpy as np
import pytest

from wsvad.detectors.checkpoint import load_detector
from wsvad.train import TrainConfig, run_train

pytestmark = pytest.mark.gpu


def _cfg(store, out, **extra) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "store": str(store.path),
            "out": str(out),
            "iterations": 150,
            "sampler": {"batch_per_class": 6},
            "optim": {"lr": 1.0e-2},
            "bags": {"count": 8, "rule": "rtfm"},
            "score_on": "snippets",
            **extra,
        }
    )


def test_training_on_cuda_learns_like_cpu_and_loads_on_cpu(planted_store, tmp_path):
    cpu = run_train(_cfg(planted_store, tmp_path / "cpu"))
    cuda = run_train(_cfg(planted_store, tmp_path / "cuda", device="cuda"))
    assert cuda.finished and cuda.steps == 150
    assert cuda.frame_auc > 0.9
    # same seed, same batches; GPU kernels sum in another order, so close, not identical
    assert abs(cuda.frame_auc - cpu.frame_auc) < 0.05
    detector, meta = load_detector(tmp_path / "cuda" / "model", device="cpu")
    assert meta["detector"] == "mil"
    assert {p.device.type for p in detector.parameters()} == {"cpu"}
    scores_cpu = np.load(tmp_path / "cpu" / "scores.npz")
    scores_cuda = np.load(tmp_path / "cuda" / "scores.npz")
    assert sorted(scores_cuda.files) == sorted(scores_cpu.files)


def test_bf16_training_on_cuda_learns(planted_store, tmp_path):
    result = run_train(_cfg(planted_store, tmp_path / "bf16", device="cuda", precision="bf16"))
    assert result.finished and result.frame_auc > 0.9
