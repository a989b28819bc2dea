"""Two training steps of wsvad's ``mil`` (defaults: the released objective, Keras l2 kernel
penalty, Adagrad lr 0.01 eps 1e-8 from zero accumulators) equal Sultani et al.'s released Keras
recipe, computed by hand.

The released code (Keras 1 + Theano, Python 2) cannot run here; tools/parity/mil_released_step.py
transcribes its ``custom_objective``, the ``l2(0.001)`` regularisers and Keras 1's Adagrad into
float64 numpy with hand-written backpropagation (checked against TensorFlow autodiff: largest
relative difference 2.9e-14) and wrote tests/detectors/data/mil_step.npz. This test rebuilds the
seeded inputs, initial weights and dropout masks from that script, takes two steps of the training
loop (``wsvad.train.loop._optimizer_step``) with the settings `wsvad train --detector mil` resolves
to, and compares loss terms, gradients and updated weights of both steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from wsvad.detectors import Batch, build_detector, detector_class
from wsvad.train.config import TrainConfig, resolve
from wsvad.train.loop import build_optimizer

GOLDEN = Path(__file__).with_name("data") / "mil_step.npz"


class _MaskReplay(torch.nn.Module):
    """The detector's dropout, replaying given keep-masks (scaled by 1 / (1 - p)) call by call."""

    def __init__(self, masks, p):
        super().__init__()
        self.masks = [torch.from_numpy(m.astype(np.float32)) / (1.0 - p) for m in masks]
        self.calls = 0

    def forward(self, x):
        mask = self.masks[self.calls]
        assert tuple(mask.shape) == tuple(x.shape)
        self.calls += 1
        return x * mask


def _wsvad_order(a: np.ndarray, n: int) -> np.ndarray:
    """The Keras batch is 30 abnormal then 30 normal videos; wsvad's is normal first."""
    return np.concatenate([a[n:], a[:n]])


@pytest.fixture(scope="module")
def steps(parity_tool, loop_step):
    """(golden, per step: loss terms, gradients, weights after the step)."""
    tool, golden = parity_tool("mil_released_step"), np.load(GOLDEN)
    x, init, masks = tool.make_inputs(), tool.make_initial_weights(), tool.make_masks()
    assert tool.sha256_arrays([x]) == str(golden["inputs_sha256"])
    assert tool.sha256_arrays([init[k] for k in sorted(init)]) == str(golden["init_sha256"])
    assert tool.sha256_arrays([m for pair in masks for m in pair]) == str(golden["masks_sha256"])

    det = build_detector("mil", (tool.D,))  # defaults: the released objective
    layers = {"1": det.fc1, "2": det.fc2, "3": det.fc3}
    with torch.no_grad():
        for k, layer in layers.items():
            layer.weight.copy_(torch.from_numpy(init[f"W{k}"].T))  # Keras kernels are (in, out)
            layer.bias.copy_(torch.from_numpy(init[f"b{k}"]))
    det.train()
    # `wsvad train --detector mil` without a config: the resolved recipe, the loop's own step
    cfg = resolve(
        TrainConfig(store="s", out="o", detector={"name": "mil"}),
        detector_class("mil").train_defaults,
    )
    opt = build_optimizer(det.parameters(), cfg.optim)
    n = tool.N_EXP
    features = torch.from_numpy(_wsvad_order(x, n))
    labels = torch.tensor([0.0] * n + [1.0] * n)
    batch = Batch(features, labels, labels.long())
    results = []
    for step, pair in enumerate(masks):
        det.dropout = _MaskReplay([_wsvad_order(m, n) for m in pair], tool.DROPOUT)
        losses = loop_step(det, opt, batch, cfg, step)
        grads = {
            k: (layer.weight.grad.T.clone(), layer.bias.grad.clone()) for k, layer in layers.items()
        }
        after = {
            k: (layer.weight.detach().T.clone(), layer.bias.detach().clone())
            for k, layer in layers.items()
        }
        assert det.dropout.calls == 2
        results.append(({k: float(v.detach()) for k, v in losses.items()}, grads, after))
    return golden, results


@pytest.mark.parametrize("step", [0, 1])
def test_loss_terms_equal_the_released_objective(steps, step):
    golden, results = steps
    loss, hinge, l1, smooth = golden[f"step{step}/terms"]
    ours = results[step][0]
    assert ours["loss"] == pytest.approx(loss, rel=1e-6)
    assert ours["hinge"] == pytest.approx(hinge, rel=1e-6)  # summed over abnormal, mean over normal
    assert ours["sparse"] == pytest.approx(l1, rel=1e-6)  # summed over the 30 abnormal videos
    assert ours["smooth"] == pytest.approx(smooth, rel=1e-5)


@pytest.mark.parametrize("step", [0, 1])
def test_gradients_and_updated_weights_equal_keras_adagrad(steps, step):
    golden, results = steps
    _, grads, after = results[step]
    for k in ("1", "2", "3"):
        for name, ours_g, ours_w in (
            (f"W{k}", grads[k][0], after[k][0]),
            (f"b{k}", grads[k][1], after[k][1]),
        ):
            want_g = golden[f"step{step}/grad/{name}"]
            scale = float(np.abs(want_g).max())
            assert np.allclose(ours_g.numpy(), want_g, rtol=1e-4, atol=1e-5 * scale), name
            want_w = golden[f"step{step}/after/{name}"]
            assert np.allclose(ours_w.numpy(), want_w, rtol=0, atol=2e-6), name
