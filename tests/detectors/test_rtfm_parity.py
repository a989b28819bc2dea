"""One training step of wsvad's RTFM (10 crops inside) equals one step of the public RTFM code.

The golden figures (tests/detectors/data/rtfm_step.npz) were produced by running the authors'
own ``train()`` and ``Model`` (github.com/tianyu0207/RTFM @ cf938f4c) on CPU with
tools/parity/rtfm_step.py (command in its docstring). That script also defines the seeded inputs,
initial weights and dropout masks; this test rebuilds them from it (checking their sha256 against
the golden file), loads the weights through the same key mapping ``wsvad import-model`` uses, and
takes one step of the training loop (``wsvad.train.loop._optimizer_step``) with the optimizer
settings `wsvad train --detector rtfm` resolves to (Adam lr 1e-3, weight decay 5e-3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from wsvad.detectors import Batch, build_detector, detector_class
from wsvad.detectors.rtfm import state_from_public_code
from wsvad.train.config import TrainConfig, resolve
from wsvad.train.loop import build_optimizer
from wsvad.train.run import _crops_inside

GOLDEN = Path(__file__).with_name("data") / "rtfm_step.npz"


@pytest.fixture(scope="module")
def step(parity_tool, loop_step):
    """(golden figures, the wsvad detector after one step, its loss terms, initial weights)."""
    tool, golden = parity_tool("rtfm_step"), np.load(GOLDEN)
    names = [str(n) for n in golden["public_names"]]
    shapes = [tuple(int(x) for x in str(s).split(",") if x) for s in golden["public_shapes"]]
    init = tool.make_initial_state(names, shapes)
    inputs, masks = tool.make_inputs(), tool.make_masks()
    assert tool.sha256_arrays([init[k] for k in sorted(init)]) == str(golden["init_sha256"])
    assert tool.sha256_arrays(list(inputs)) == str(golden["inputs_sha256"])
    assert tool.sha256_arrays(masks) == str(golden["masks_sha256"])

    torch.set_num_threads(2)
    # `wsvad train --detector rtfm` without a config: crops inside, Adam lr 1e-3, weight decay 5e-3
    cfg = _crops_inside(
        resolve(
            TrainConfig(store="s", out="o", detector={"name": "rtfm"}),
            detector_class("rtfm").train_defaults,
        )
    )
    assert cfg.crop_mode == "inside" and cfg.detector.params["crops_inside"] is True
    det = build_detector("rtfm", (tool.CROPS, tool.D), cfg.detector.params)
    det.load_state_dict(
        state_from_public_code({k: torch.from_numpy(v) for k, v in init.items()}, det)
    )
    # The public model drops the abnormal videos' magnitudes, then the normal ones'; wsvad drops
    # the (normal, abnormal) rows of the batch in one call.
    det.drop = tool.MaskReplay([*masks[:3], np.concatenate([masks[4], masks[3]])])
    det.train()
    opt = build_optimizer(det.parameters(), cfg.optim)
    normal, abnormal = inputs
    features = torch.from_numpy(np.concatenate([normal, abnormal])).transpose(1, 2)  # (B,T,C,D)
    labels = torch.tensor([0.0] * tool.BATCH + [1.0] * tool.BATCH)
    losses = loop_step(det, opt, Batch(features, labels, labels.long()), cfg)
    assert det.drop.calls == 4
    return golden, det, losses, init


def _ours(det, public_name: str) -> str:
    from wsvad.detectors.rtfm import public_code_key

    return public_code_key(public_name)


def test_loss_equals_the_public_step(step):
    golden, det, losses, _ = step
    p = det.params
    assert float(losses["loss"].detach()) == pytest.approx(float(golden["loss"]), rel=2e-6)
    assert p.lambda_smooth * float(losses["smooth"]) == pytest.approx(
        float(golden["smooth"]), rel=1e-5
    )
    assert p.lambda_sparse * float(losses["sparse"]) == pytest.approx(
        float(golden["sparse"]), rel=1e-6
    )


def test_gradients_equal_the_public_step(step):
    golden, det, _, _ = step
    params = dict(det.named_parameters())
    names = [str(n) for n in golden["public_names"]]
    checked = 0
    for name in names:
        if f"grad/{name}" not in golden:
            continue
        g = params[_ours(det, name)].grad.numpy().ravel()
        idx = golden[f"idx/{name}"] if f"idx/{name}" in golden else slice(None)
        want = golden[f"grad/{name}"]
        scale = max(float(np.abs(want).max()), 1e-30)
        assert np.allclose(g[idx], want, rtol=1e-4, atol=1e-5 * scale), name
        sums = golden[f"grad_sums/{name}"]
        g64 = g.astype(np.float64)
        assert (g64**2).sum() == pytest.approx(sums[1], rel=1e-4), name
        checked += 1
    assert checked == len(params) == 32  # every parameter of the 24.7 M


def test_updated_weights_and_batchnorm_statistics_equal_the_public_step(step):
    golden, det, _, init = step
    state = det.state_dict()
    names = [str(n) for n in golden["public_names"]]
    for name in names:
        now = state[_ours(det, name)].numpy().ravel()
        idx = golden[f"idx/{name}"] if f"idx/{name}" in golden else slice(None)
        assert np.allclose(now[idx], golden[f"after/{name}"], rtol=1e-5, atol=1e-7), name
        if f"delta_sums/{name}" in golden:
            delta = now.astype(np.float64) - init[name].ravel()
            assert (delta**2).sum() == pytest.approx(golden[f"delta_sums/{name}"][1], rel=1e-4)
    assert len(names) == len(state) == 47
