"""MIL ranking (Sultani et al.) on tiny hand-computed inputs."""

import json

import pytest
import torch

from wsvad.detectors import Batch, build_detector
from wsvad.detectors.checkpoint import load_detector, save_detector
from wsvad.detectors.losses import (
    mil_all_pairs_hinge,
    mil_ranking_hinge,
    sparsity,
    temporal_smoothness,
)
from wsvad.errors import WsvadError


class _Fixed(torch.nn.Module):
    """Stands in for the MLP: returns the first feature as the score."""

    def forward(self, features):
        return features[..., 0]


def _mil_with_fixed_scores(**params):
    det = build_detector("mil", (2,), params)
    det.forward = _Fixed().forward  # the loss only sees the scores
    return det


def test_mil_paired_mean_loss_hand_computed():
    # Pair 0: normal scores [0.1, 0.4, 0.2], abnormal [0.3, 0.9, 0.5]
    # Pair 1: normal scores [0.6, 0.2, 0.1], abnormal [0.2, 0.3, 0.1]
    normal = torch.tensor([[0.1, 0.4, 0.2], [0.6, 0.2, 0.1]])
    abnormal = torch.tensor([[0.3, 0.9, 0.5], [0.2, 0.3, 0.1]])
    scores = torch.cat([normal, abnormal])
    feats = torch.stack([scores, torch.zeros_like(scores)], dim=-1)  # (4, 3, 2)
    det = _mil_with_fixed_scores(
        lambda_smooth=0.5, lambda_sparse=0.25, objective="paired_mean", weight_penalty="none"
    )
    out = det.loss(Batch(feats, torch.tensor([0.0, 0, 1, 1]), torch.tensor([0, 0, 1, 1])))
    # hinge: pair 0 max(0, 1 - 0.9 + 0.4) = 0.5; pair 1 max(0, 1 - 0.3 + 0.6) = 1.3; mean 0.9
    assert float(out["hinge"]) == pytest.approx(0.9)
    # smoothness on abnormal: (0.3-0.9)^2 + (0.9-0.5)^2 = 0.52; (0.2-0.3)^2 + (0.3-0.1)^2 = 0.05;
    # mean 0.285
    assert float(out["smooth"]) == pytest.approx(0.285)
    # sparsity on abnormal: 1.7 and 0.6, mean 1.15
    assert float(out["sparse"]) == pytest.approx(1.15)
    assert float(out["loss"]) == pytest.approx(0.9 + 0.5 * 0.285 + 0.25 * 1.15)


def test_mil_released_loss_hand_computed():
    """The released Keras objective on the same scores: every normal against every abnormal."""
    normal = torch.tensor([[0.1, 0.4, 0.2], [0.6, 0.2, 0.1]])
    abnormal = torch.tensor([[0.3, 0.9, 0.5], [0.2, 0.3, 0.1]])
    scores = torch.cat([normal, abnormal])
    feats = torch.stack([scores, torch.zeros_like(scores)], dim=-1)
    det = _mil_with_fixed_scores(lambda_smooth=0.5, lambda_sparse=0.25, weight_penalty="none")
    out = det.loss(Batch(feats, torch.tensor([0.0, 0, 1, 1]), torch.tensor([0, 0, 1, 1])))
    # normal 0 (max 0.4): max(0, 1-0.9+0.4) + max(0, 1-0.3+0.4) = 0.5 + 1.1 = 1.6
    # normal 1 (max 0.6): max(0, 1-0.9+0.6) + max(0, 1-0.3+0.6) = 0.7 + 1.3 = 2.0; mean 1.8
    assert float(out["hinge"]) == pytest.approx(1.8)
    assert float(out["smooth"]) == pytest.approx(0.52 + 0.05)  # summed over abnormal videos
    assert float(out["sparse"]) == pytest.approx(1.7 + 0.6)
    assert float(out["penalty"]) == 0.0
    assert float(out["loss"]) == pytest.approx(1.8 + 0.5 * 0.57 + 0.25 * 2.3)


def test_mil_weight_penalties_hand_computed():
    det = build_detector("mil", (2,), {"hidden1": 2, "hidden2": 1})
    with torch.no_grad():
        det.fc1.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0]]))
        det.fc1.bias.copy_(torch.tensor([3.0, 4.0]))
        det.fc2.weight.copy_(torch.tensor([[2.0, 0.0]]))
        det.fc2.bias.copy_(torch.tensor([1.0]))
        det.fc3.weight.copy_(torch.tensor([[-2.0]]))
        det.fc3.bias.copy_(torch.tensor([5.0]))
    # Keras l2(0.001) on kernels only: 0.001 * (1 + 4 + 1 + 4 + 4) = 0.014; biases not included
    assert float(det.weight_penalty().detach()) == pytest.approx(0.014)
    port = build_detector("mil", (2,), {"hidden1": 2, "hidden2": 1, "weight_penalty": "layer_norm"})
    port.load_state_dict(det.state_dict())
    # 0.001 * (||1,2,0,-1,3,4|| + ||2,0,1|| + ||-2,5||) = 0.001 * (sqrt 31 + sqrt 5 + sqrt 29)
    assert float(port.weight_penalty().detach()) == pytest.approx(
        0.001 * (31**0.5 + 5**0.5 + 29**0.5)
    )
    det.eval()
    x = torch.zeros(2, 3, 2)  # scores sigmoid(-2 * (2 * relu(b1)[0] + 1) + 5) = sigmoid(-9)
    out = det.loss(Batch(x, torch.tensor([0.0, 1.0]), torch.tensor([0, 1])))
    assert float(out["penalty"]) == pytest.approx(0.014)
    s = torch.sigmoid(torch.tensor(-9.0))
    # one normal, one abnormal, all scores equal: hinge 1; smooth 0; sparse 3 s
    assert float(out["loss"].detach()) == pytest.approx(1.0 + 8e-5 * 3 * float(s) + 0.014, rel=1e-6)


def test_mil_hinge_is_zero_when_margin_is_met():
    scores = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    feats = torch.stack([scores, scores], dim=-1)
    det = _mil_with_fixed_scores(lambda_smooth=0.0, lambda_sparse=0.0, weight_penalty="none")
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
    assert (det.params.objective, det.params.weight_penalty) == ("released", "kernel_l2")
    assert det.params.penalty_weight == 1.0e-3
    # The released Keras code: Adagrad(lr=0.01, epsilon=1e-08), accumulators from 0, no decay.
    assert type(det).train_defaults["optim"] == {
        "name": "adagrad",
        "lr": 1.0e-2,
        "weight_decay": 0.0,
        "eps": 1.0e-8,
        "initial_accumulator_value": 0.0,
    }
    assert type(det).train_defaults["iterations"] == 20000
    assert type(det).train_defaults["sampler"] == {"batch_per_class": 30}


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


# Three normal and two abnormal videos for the loss terms themselves (detectors/losses.py).
NORMAL3 = torch.tensor([[0.3, 0.6, 0.0], [0.8, 0.1, 0.2], [0.1, 0.0, 0.05]])  # max .6 .8 .1
ABNORMAL2 = torch.tensor([[0.2, 0.9, 0.1], [0.4, 0.3, 0.5]])  # max .9 .5


def test_loss_terms_hand_computed_with_the_default_margin_of_one():
    # paired: max(0, 1 - .9 + .6) = .7 and max(0, 1 - .5 + .8) = 1.3, mean 1.0
    assert float(mil_ranking_hinge(ABNORMAL2, NORMAL3[:2])) == pytest.approx(1.0)
    # all pairs, summed over abnormal j per normal i: .7 + 1.1, .9 + 1.3, .2 + .6 -> mean 1.6
    # (a mean over j would give .8, a sum over i then mean over j 2.4)
    assert float(mil_all_pairs_hinge(ABNORMAL2, NORMAL3)) == pytest.approx(1.6)
    # (.2-.9)^2 + (.9-.1)^2 = 1.13 and (.4-.3)^2 + (.3-.5)^2 = .05 -> mean .59
    assert float(temporal_smoothness(ABNORMAL2)) == pytest.approx(0.59)
    # row sums 1.2 and 1.2 -> mean 1.2; column sums would give .6, 1.2, .6
    assert float(sparsity(ABNORMAL2)) == pytest.approx(1.2)
    assert float(sparsity(NORMAL3)) == pytest.approx((0.9 + 1.1 + 0.15) / 3)


def test_ranking_hinges_clip_pairs_that_meet_the_margin_at_zero():
    # margin .2, paired: max(0, .2 - .9 + .6) = 0 (not -.1) and .2 - .5 + .8 = .5 -> mean .25
    assert float(mil_ranking_hinge(ABNORMAL2, NORMAL3[:2], margin=0.2)) == pytest.approx(0.25)
    # all pairs: normal 0: 0 + .3; normal 1: .1 + .5; normal 2: 0 + 0 -> mean .3
    assert float(mil_all_pairs_hinge(ABNORMAL2, NORMAL3, margin=0.2)) == pytest.approx(0.3)


@pytest.mark.parametrize(("objective", "hinge"), [("released", 0.8), ("paired_mean", 0.4)])
def test_mil_loss_uses_the_margin_param(objective, hinge):
    # margin .5 on the scores above (abnormal maxima .9 and .3): released: normal 0 (max .4):
    # max(0, .5-.9+.4) + (.5-.3+.4) = 0 + .6, normal 1 (max .6): .2 + .8, mean .8; paired: 0 and
    # .5 - .3 + .6 = .8, mean .4
    normal = torch.tensor([[0.1, 0.4, 0.2], [0.6, 0.2, 0.1]])
    abnormal = torch.tensor([[0.3, 0.9, 0.5], [0.2, 0.3, 0.1]])
    scores = torch.cat([normal, abnormal])
    feats = torch.stack([scores, torch.zeros_like(scores)], dim=-1)
    det = _mil_with_fixed_scores(margin=0.5, objective=objective, weight_penalty="none")
    out = det.loss(Batch(feats, torch.tensor([0.0, 0, 1, 1]), torch.tensor([0, 0, 1, 1])))
    assert float(out["hinge"]) == pytest.approx(hinge)


def test_mil_relu_hidden2_puts_a_relu_on_the_32_unit_layer():
    torch.manual_seed(0)
    det = build_detector("mil", (10,), {"hidden1": 7, "hidden2": 5, "relu_hidden2": True}).eval()
    x = torch.randn(3, 4, 10)
    h2 = torch.relu(x @ det.fc1.weight.T + det.fc1.bias) @ det.fc2.weight.T + det.fc2.bias
    assert (h2 < 0).any()
    expected = torch.sigmoid(torch.relu(h2) @ det.fc3.weight.T + det.fc3.bias).squeeze(-1)
    torch.testing.assert_close(det(x), expected, rtol=0, atol=1e-6)
