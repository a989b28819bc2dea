"""Planted-anomaly bag features shared by the detector learning tests, the training loop that
measures how well a detector finds them, and what the parity tests share (the tools/parity scripts
that define their inputs, one training step of the loop on a fixed batch)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _planted(n_per_class: int, T: int = 32, D: int = 64, seed: int = 0):
    """Normal videos ~ N(0, 1); abnormal ones have 3-6 consecutive bags shifted by +1 on 16 dims.

    Returns ``x (2n, T, D)``, video labels ``(2n,)`` (normal first) and bag labels ``(2n, T)``.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n_per_class, T, D, generator=g)
    bag_labels = torch.zeros(2 * n_per_class, T)
    for v in range(n_per_class, 2 * n_per_class):
        length = int(torch.randint(3, 7, (1,), generator=g))
        start = int(torch.randint(0, T - length + 1, (1,), generator=g))
        x[v, start : start + length, :16] += 1.0
        bag_labels[v, start : start + length] = 1
    labels = torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)])
    return x, labels, bag_labels


def _auc_after_training(det, optim, steps: int, per_class: int, precision: str = "fp32") -> float:
    """Train ``det`` on 64 + 64 planted videos (each batch ``per_class`` normal + ``per_class``
    abnormal, drawn with a fixed generator; the loss under CPU bf16 autocast with ``precision``
    bf16, as ``wsvad train --precision bf16``), then return the bag-level ROC AUC of its
    ``score_video`` on 32 + 32 new planted videos."""
    from sklearn.metrics import roc_auc_score

    from wsvad.detectors import Batch

    x, y, _ = _planted(64, seed=1)
    x_test, _, bag_test = _planted(32, seed=2)
    g = torch.Generator().manual_seed(0)
    det.train()
    for _ in range(steps):
        idx = torch.cat(
            [
                torch.randint(0, 64, (per_class,), generator=g),
                torch.randint(64, 128, (per_class,), generator=g),
            ]
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = det.loss(Batch(x[idx], y[idx], y[idx].long()))["loss"]
        optim.zero_grad()
        loss.backward()
        optim.step()
    det.eval()
    scores = torch.cat([det.score_video(v) for v in x_test])
    return float(roc_auc_score(bag_test.reshape(-1).numpy(), scores.numpy()))


@pytest.fixture
def auc_after_training():
    """``auc_after_training(det, optim, steps, per_class, precision="fp32")`` -> the bag-level AUC
    on new planted videos."""
    return _auc_after_training


@pytest.fixture(scope="session")
def parity_tool():
    """``load(name)``: the module ``tools/parity/<name>.py`` (the script that made a golden file
    and defines its seeded inputs, weights and masks)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(
            f"{name}_tool", ROOT / "tools" / "parity" / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def loop_step():
    """``step(detector, optimizer, batch, cfg, index)``: the training loop's own optimizer step
    (``wsvad.train.loop._optimizer_step``) on ``batch``, served by a sampler that holds only it."""
    from wsvad.train.loop import _optimizer_step

    class FixedSampler:
        at_epoch_start = False

        def __init__(self, batch):
            self.batch = batch

        def next_batch(self):
            return self.batch

    def step(detector, optimizer, batch, cfg, index: int = 0):
        return _optimizer_step(detector, optimizer, FixedSampler(batch), cfg, index)

    return step


@pytest.fixture(
    params=[
        [1.0, 0.0],  # both halves wrong
        [1.0, 1.0],  # only the normal half wrong
        [0.0, 0.0],  # only the abnormal half wrong
        [0.0, 1.0, 1.0],  # odd count (the halves, split at B // 2, are right)
    ]
)
def unbalanced_labels(request):
    """Label lists a balanced-batch loss (normal half first, then abnormal) must refuse."""
    return request.param
