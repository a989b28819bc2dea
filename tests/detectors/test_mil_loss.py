"""MIL ranking (Sultani et al.) on tiny hand-computed inputs."""

import json

import pytest
import torch

from wsvad.detectors import Batch, build_detector
from wsvad.detectors.checkpoint import load_detector, save_detector
from wsvad.errors import WsvadError


class _Fixed(torch.nn.Module):
    """Stands in for the MLP: returns the first feature as the score."""

    def forward(self, features):
        return features[..., 0]


def _mil_with_fixed_scores(**params):
    det = build_detector("mil", (2,), params)
    det.forward = _Fixed().forward  # the loss only sees the scores
    return det


def test_mil_loss_hand_computed():
    # Pair 0: normal scores [0.1, 0.4, 0.2], abnormal [0.3, 0.9, 0.5]
    # Pair 1: normal scores [0.6, 0.2, 0.1], abnormal [0.2, 0.3, 0.1]
    normal = torch.tensor([[0.1, 0.4, 0.2], [0.6, 0.2, 0.1]])
    abnormal = torch.tensor([[0.3, 0.9, 0.5], [0.2, 0.3, 0.1]])
    scores = torch.cat([normal, abnormal])
    feats = torch.stack([scores, torch.zeros_like(scores)], dim=-1)  # (4, 3, 2)
    det = _mil_with_fixed_scores(lambda_smooth=0.5, lambda_sparse=0.25)
    out = det.loss(Batch(feats, torch.tensor([0.0, 0, 1, 1]), torch.tensor([0, 0, 1, 1])))
    # hinge: pair 0 max(0, 1 - 0.9 + 0.4) = 0.5; pair 1 max(0, 1 - 0.3 + 0.6) = 1.3; mean 0.9
    assert float(out["hinge"]) == pytest.approx(0.9)
    # smoothness on abnormal: (0.3-0.9)^2 + (0.9-0.5)^2 = 0.52; (0.2-0.3)^2 + (0.3-0.1)^2 = 0.05;
    # mean 0.285
    assert float(out["smooth"]) == pytest.approx(0.285)
    # sparsity on abnormal: 1.7 and 0.6, mean 1.15
    assert float(out["sparse"]) == pytest.approx(1.15)
    assert float(out["loss"]) == pytest.approx(0.9 + 0.5 * 0.285 + 0.25 * 1.15)


def test_mil_hinge_is_zero_when_margin_is_met():
    scores = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    feats = torch.stack([scores, scores], dim=-1)
    det = _mil_with_fixed_scores(lambda_smooth=0.0, lambda_sparse=0.0)
    out = det.loss(Batch(feats, torch.tensor([0.0, 1.0]), torch.tensor([0, 1])))
    assert float(out["loss"]) == 0.0


def test_mil_architecture_is_512_32_1_with_paper_defaults():
    det = build_detector("mil", (1024,))
    assert [tuple(p.shape) for p in det.parameters()] == [
        (512, 1024),
        (512,),
        (32, 512),
        (32,),
        (1, 32),
        (1,),
    ]
    assert (
        det.params.dropout == 0.6
        and det.params.lambda_smooth == 8.0e-5
        and det.params.lambda_sparse == 8.0e-5
    )
    assert type(det).train_defaults["optim"] == {
        "name": "adagrad",
        "lr": 1.0e-3,
        "weight_decay": 1.0e-3,
    }


def test_mil_eval_is_deterministic_and_train_uses_dropout():
    torch.manual_seed(0)
    det = build_detector("mil", (8,))
    x = torch.randn(2, 5, 8)
    det.eval()
    assert torch.equal(det(x), det(x))
    det.train()
    assert not torch.equal(det(x), det(x))


def test_mil_rejects_unknown_params():
    with pytest.raises(ValueError, match="detector mil params: hidden: unknown key"):
        build_detector("mil", (8,), {"hidden": 3})


def test_load_detector_refuses_swapped_weights(tmp_path):
    a = build_detector("mil", (8,))
    save_detector(tmp_path / "a", a, {})
    save_detector(tmp_path / "b", build_detector("mil", (8,), {"hidden1": 4}), {})
    (tmp_path / "a.safetensors").write_bytes((tmp_path / "b.safetensors").read_bytes())
    with pytest.raises(WsvadError, match="a.safetensors: does not match a.json"):
        load_detector(tmp_path / "a")


def test_load_detector_names_missing_files(tmp_path):
    with pytest.raises(WsvadError, match=r"nothing.json: missing"):
        load_detector(tmp_path / "nothing")
    save_detector(tmp_path / "m", build_detector("mil", (8,)), {})
    meta = json.loads((tmp_path / "m.json").read_text())
    assert (
        meta["detector"] == "mil"
        and meta["params"]["hidden1"] == 512
        and meta["format"] == "wsvad.detector/1"
    )
    (tmp_path / "m.safetensors").unlink()
    with pytest.raises(WsvadError, match="m.safetensors: missing"):
        load_detector(tmp_path / "m")
