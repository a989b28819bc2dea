"""The detector contract, checked for every registered detector (see wsvad/detectors/base.py).

A detector declares the per-snippet feature shape it needs (``example_feature_shape``, with
``len == feature_ndim``) and may shrink itself for this test via ``example_params``.
"""

import math

import pytest
import torch

from wsvad.detectors import Batch, build_detector, detector_class, list_detectors
from wsvad.detectors.checkpoint import load_detector, save_detector

N_CLASSES = 3
B_HALF, T = 3, 32  # T = 32: the bag count every balanced-sampler paper uses


def _build(name: str, seed: int = 0):
    cls = detector_class(name)
    torch.manual_seed(seed)
    return build_detector(
        name, cls.example_feature_shape, cls.example_params, n_classes=N_CLASSES
    ), cls


def _batch(cls, seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(2 * B_HALF, T, *cls.example_feature_shape, generator=g)
    feats[B_HALF:, 10:14] += 2.0  # something for a ranking loss to rank
    labels = torch.tensor([0.0] * B_HALF + [1.0] * B_HALF)
    class_index = torch.tensor([0] * B_HALF + [1 + i % (N_CLASSES - 1) for i in range(B_HALF)])
    return Batch(feats, labels, class_index, torch.arange(2 * B_HALF), None)


def test_registry_is_not_empty_and_has_mil():
    assert "mil" in list_detectors()


@pytest.mark.parametrize("name", list_detectors())
def test_declared_feature_shape_matches_feature_ndim(name):
    cls = detector_class(name)
    assert len(cls.example_feature_shape) == cls.feature_ndim
    assert cls.sampler in ("balanced", "random_consecutive")


@pytest.mark.parametrize("name", list_detectors())
def test_forward_shape_and_range(name):
    det, cls = _build(name)
    det.eval()
    batch = _batch(cls)
    with torch.no_grad():
        scores = det(batch.features)
    assert scores.shape == (2 * B_HALF, T)
    assert torch.isfinite(scores).all()
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0


@pytest.mark.parametrize("name", list_detectors())
def test_score_video_shape_and_range(name):
    det, cls = _build(name)
    det.eval()
    n = 45  # not a multiple of anything a detector might cut test videos into
    scores = det.score_video(torch.randn(n, *cls.example_feature_shape))
    assert scores.shape == (n,)
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0


@pytest.mark.parametrize("name", list_detectors())
def test_loss_is_finite_and_gradients_reach_every_parameter(name):
    det, cls = _build(name)
    det.train()
    losses = det.loss(_batch(cls))
    assert "loss" in losses and losses["loss"].dim() == 0
    for key, value in losses.items():
        assert torch.is_tensor(value) and value.dim() == 0, key
        assert math.isfinite(float(value.detach())), key
    losses["loss"].backward()
    no_grad = [
        n
        for n, p in det.named_parameters()
        if p.requires_grad
        and (p.grad is None or not torch.isfinite(p.grad).all() or float(p.grad.abs().sum()) == 0.0)
    ]
    assert no_grad == [], f"parameters without gradient: {no_grad}"


@pytest.mark.parametrize("name", list_detectors())
def test_checkpoint_round_trip(name, tmp_path):
    det, cls = _build(name, seed=3)
    det.eval()
    feats = _batch(cls).features
    save_detector(tmp_path / "model", det, {"seed": 3, "class_names": ["Normal", "A", "B"]})
    loaded, meta = load_detector(tmp_path / "model")
    assert meta["detector"] == name and meta["seed"] == 3 and meta["n_classes"] == N_CLASSES
    assert meta["feature_shape"] == list(cls.example_feature_shape)
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(det(feats), loaded(feats))
    for (k1, v1), (k2, v2) in zip(
        det.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k1 == k2 and torch.equal(v1, v2)
