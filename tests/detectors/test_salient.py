"""Salient self-attention detector (Watanabe et al., ICIP 2022): attention pooling, BCE, bag
inference, learning."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from wsvad.config import load_config
from wsvad.detectors import Batch, build_detector
from wsvad.detectors.layers import spread_range_scores, window_ranges
from wsvad.detectors.salient import SalientParams
from wsvad.train.config import TrainConfig


def _n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _tiny(**params):
    """D=2, d_a=1, r=1, FC1 of 1 unit, hand-set weights (see
    test_video_score_matches_hand_computation)."""
    det = build_detector(
        "salient", (2,), {"d_a": 1, "r": 1, "fc_hidden": 1, "dropout": 0.0, **params}
    )
    with torch.no_grad():
        det.att1.weight.copy_(torch.tensor([[1.0, 0.0]]))
        det.att1.bias.zero_()
        det.att2.weight.copy_(torch.tensor([[1.0]]))
        det.att2.bias.zero_()
        det.fc1.weight.copy_(torch.tensor([[1.0, 1.0]]))
        det.fc1.bias.zero_()
        det.fc2.weight.copy_(torch.tensor([[1.0]]))
        det.fc2.bias.fill_(-2.0)
    return det.eval()


def _hand_score(rows):
    """tanh -> softmax over time -> M = sum_t A_t F_t -> FC1 (sum) -> FC2 (x - 2) -> sigmoid."""
    logits = [math.tanh(r[0]) for r in rows]
    z = sum(math.exp(v) for v in logits)
    a = [math.exp(v) / z for v in logits]
    m = [sum(a[t] * rows[t][d] for t in range(len(rows))) for d in range(2)]
    return 1 / (1 + math.exp(-(m[0] + m[1] - 2.0)))


def test_video_score_matches_hand_computation():
    det = _tiny()
    x = torch.tensor([[[0.0, 0.0], [1.0, 2.0]]])
    # A_2 = softmax([0, tanh 1]) = [0.31831, 0.68169]; M = [0.68169, 1.36338]; sigmoid(0.04507) =
    # 0.51127
    assert det.video_scores(x).item() == pytest.approx(0.51127, abs=1e-5)
    assert det.video_scores(x).item() == pytest.approx(_hand_score([[0, 0], [1, 2]]), abs=1e-6)
    assert det.attention(x)[0, 0].tolist() == pytest.approx([0.31831, 0.68169], abs=1e-5)
    assert det(x)[0].tolist() == pytest.approx(
        [0.51127, 0.51127], abs=1e-5
    )  # every bag gets the video score


def test_bce_loss_matches_hand_computation():
    det = _tiny()
    x = torch.tensor([[[0.0, 0.0], [1.0, 2.0]], [[2.0, 1.0], [0.0, 3.0]]])
    s_n, s_a = _hand_score([[0, 0], [1, 2]]), _hand_score([[2, 1], [0, 3]])
    out = det.loss(Batch(x, torch.tensor([0.0, 1.0]), torch.tensor([0, 1])))
    expected = -(math.log(1 - s_n) + math.log(s_a)) / 2
    assert out["loss"].item() == pytest.approx(expected, abs=1e-6)
    assert out["bce"].item() == pytest.approx(expected, abs=1e-6)


def test_score_is_invariant_to_segment_order():
    """Sec. 3: the attention sees each segment alone, so shuffling time changes nothing."""
    torch.manual_seed(0)
    det = build_detector("salient", (16,), {}).eval()
    x = torch.randn(3, 32, 16)
    perm = torch.randperm(32)
    assert torch.allclose(det.video_scores(x), det.video_scores(x[:, perm]), atol=1e-6)


def test_window_ranges_follow_the_bag_formula():
    assert window_ranges(8, 4) == [(0, 4), (4, 8)]
    assert window_ranges(10, 4) == [(0, 4), (4, 8), (6, 10)]  # last bag = final l snippets
    assert window_ranges(3, 4) == [(0, 3)]
    with pytest.raises(ValueError, match="n >= 1 and length >= 1"):
        window_ranges(0, 4)


def test_spread_range_scores_averages_overlaps():
    scores = spread_range_scores(10, [(0, 4), (4, 8), (6, 10)], torch.tensor([0.1, 0.5, 0.9]))
    assert scores.tolist() == pytest.approx([0.1] * 4 + [0.5, 0.5, 0.7, 0.7, 0.9, 0.9])
    with pytest.raises(ValueError, match="snippet 2 of 3 is not covered"):
        spread_range_scores(3, [(0, 2)], torch.tensor([1.0]))


@pytest.mark.parametrize("tail", ["last_window", "short_bag"])
def test_score_video_scores_bags_of_split_size(tail):
    torch.manual_seed(1)
    det = build_detector("salient", (6,), {"split_size": 4, "tail": tail}).eval()
    x = torch.randn(10, 6)
    one = lambda a, b: det.video_scores(x[a:b].unsqueeze(0))[0].item()  # noqa: E731
    got = det.score_video(x).tolist()
    if tail == "last_window":
        expected = (
            [one(0, 4)] * 4
            + [one(4, 8)] * 2
            + [(one(4, 8) + one(6, 10)) / 2] * 2
            + [one(6, 10)] * 2
        )
    else:
        expected = [one(0, 4)] * 4 + [one(4, 8)] * 4 + [one(8, 10)] * 2
    assert got == pytest.approx(expected, abs=1e-6)
    short = torch.randn(3, 6)
    assert det.score_video(short).tolist() == pytest.approx(
        [det.video_scores(short[None])[0].item()] * 3
    )


def test_parameter_count_matches_table_6():
    """Table 6: 328,004 (d_a=64, r=3) and 721,992 (d_a=128, r=7), reproduced with D = 2048."""
    assert _n_params(build_detector("salient", (2048,), {})) == 328_004
    assert _n_params(build_detector("salient", (2048,), {"d_a": 128, "r": 7})) == 721_992
    assert _n_params(build_detector("salient", (1024,), {})) == 164_164


def test_bilstm_front_pools_lstm_outputs_or_inputs():
    det = build_detector("salient", (20,), {"bilstm": True, "lstm_hidden": 8, "r": 2})
    assert det.att1.in_features == 16 and det.fc1.in_features == 16 * 2
    raw = build_detector(
        "salient", (20,), {"bilstm": True, "lstm_hidden": 8, "r": 2, "pool_source": "input"}
    )
    assert raw.fc1.in_features == 20 * 2
    scores = det(torch.randn(2, 5, 20))
    assert scores.shape == (2, 5) and bool(((scores >= 0) & (scores <= 1)).all())


@pytest.mark.parametrize("where", ["attention", "input", "pooled"])
def test_dropout_acts_only_in_training(where):
    torch.manual_seed(2)
    det = build_detector("salient", (8,), {"dropout_at": where, "dropout": 0.5})
    x = torch.randn(4, 6, 8)
    det.eval()
    assert torch.equal(det.video_scores(x), det.video_scores(x))
    det.train()
    assert not torch.allclose(det.video_scores(x), det.video_scores(x))


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    det = build_detector("salient", (8,), {"bilstm": True, "lstm_hidden": 4})
    batch = Batch(
        torch.randn(4, 6, 8), torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1])
    )
    det.loss(batch)["loss"].backward()
    missing = [
        n for n, p in det.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)
    ]
    assert not missing


def test_unknown_param_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="da"):
        build_detector("salient", (8,), {"da": 3})


def test_learns_to_find_planted_anomalies(auc_after_training):
    torch.manual_seed(0)
    det = build_detector("salient", (64,), {"split_size": 4})
    optim = torch.optim.RAdam(det.parameters(), lr=1e-3)
    assert auc_after_training(det, optim, steps=300, per_class=16) > 0.9  # measured 0.96


CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize(
    "dataset, expected", [("ucf", (128, 7, 28)), ("shanghaitech", (64, 3, 21)), ("xd", (64, 3, 9))]
)
def test_configs_hold_the_papers_settings(dataset, expected):
    cfg = load_config(TrainConfig, CONFIGS / f"{dataset}_salient.yaml", {})
    params = SalientParams.model_validate(cfg.detector.params)
    assert (params.d_a, params.r, params.split_size) == expected
    assert (cfg.optim.name, cfg.optim.lr, cfg.sampler.batch_per_class, cfg.bags.count) == (
        "radam",
        1e-3,
        32,
        32,
    )


def test_bilstm_runs_over_time_within_each_video():
    # batch_first: a video's score does not depend on the other videos of the batch
    torch.manual_seed(0)
    det = build_detector("salient", (6,), {"bilstm": True, "lstm_hidden": 4, "d_a": 5}).eval()
    x = torch.randn(3, 7, 6)
    torch.testing.assert_close(det.video_scores(x)[:1], det.video_scores(x[:1]), rtol=0, atol=1e-6)


def test_bilstm_with_input_pooling_pools_the_segment_features():
    """Sec. 4.3 variant: attention from the BiLSTM states, M = F A_2^t from the input F."""
    torch.manual_seed(0)
    params = {"bilstm": True, "lstm_hidden": 4, "pool_source": "input", "d_a": 5, "r": 2}
    det = build_detector("salient", (6,), params).eval()
    x = torch.randn(2, 7, 6)
    m = torch.bmm(det.attention(x), x).flatten(1)  # (B, r * 6): the input, not 2 * 4 states
    expected = torch.sigmoid(det.fc2(det.fc1(m))).squeeze(1)
    torch.testing.assert_close(det.video_scores(x), expected, rtol=0, atol=1e-6)


def test_loss_casts_the_labels_to_the_scores_dtype():
    torch.manual_seed(0)
    det = build_detector("salient", (6,), {"d_a": 5}).eval().to(torch.bfloat16)
    x = torch.randn(4, 5, 6, dtype=torch.bfloat16)
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0])  # float32, as every sampler makes them
    loss = det.loss(Batch(x, labels, labels.long()))["loss"]
    scores = det.video_scores(x).float()
    want = -(labels * scores.log() + (1 - labels) * (1 - scores).log()).mean()
    assert loss.dtype == torch.bfloat16
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=2e-2)
