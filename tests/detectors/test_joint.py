"""Joint detection + classification detector (Majhi et al., FG 2021): attention levels,
eq. (3)-(6), inference."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from sklearn.metrics import roc_auc_score

from wsvad.config import load_config
from wsvad.detectors import Batch, build_detector
from wsvad.detectors.joint import Joint, JointOutputs, JointParams
from wsvad.detectors.layers import linspace_ranges, pool_ranges
from wsvad.train.config import TrainConfig

SMALL = {"lstm_hidden": 8, "att1_latent": 16, "det_hidden": 64, "cls_hidden": 32}


def _small(shape=(6,), n_classes=3, **params):
    return build_detector("joint", shape, {**SMALL, **params}, n_classes=n_classes)


def _first_level_alpha(det, mean_latent: float) -> tuple[list[float], list[float]]:
    """``alpha`` of two segments ``[3, 4], [1, 0]`` (l2-normalised: ``[0.6, 0.8], [1, 0]``) with the
    global perceptron set to ``s = (latent, -latent)``, and the softmax eq. (1) gives for
    ``mean_latent``, the hand-computed mean of the local latents over the two segments."""
    with torch.no_grad():
        det.att1_global.weight.copy_(torch.tensor([[1.0], [-1.0]]))
        det.att1_global.bias.zero_()
    alpha = det.eval().explain(torch.tensor([[[3.0, 4.0], [1.0, 0.0]]])).alpha[0]
    s = 2 * mean_latent  # softmax of (m, -m): sigmoid of 2m and of -2m
    return alpha.tolist(), [1 / (1 + math.exp(-s)), 1 / (1 + math.exp(s))]


def test_first_level_attention_matches_eq_1():
    det = _small((2,), segments=2, att1_latent=1)
    with torch.no_grad():
        det.att1_local.weight.copy_(torch.tensor([[1.0, 2.0]]))
        det.att1_local.bias.fill_(0.5)
    # latents 0.6 + 1.6 + 0.5 = 2.7 and 1 + 0.5 = 1.5 -> mean 2.1
    alpha, expected = _first_level_alpha(det, 2.1)
    assert alpha == pytest.approx(expected, abs=1e-6)


def test_modulation_and_second_level_attention_are_wired_as_in_the_paper():
    torch.manual_seed(0)
    det = _small(segments=4).eval()
    x = torch.randn(2, 4, 6)
    seen = {}
    det.det1.register_forward_hook(lambda m, i, o: seen.__setitem__("f_star", i[0]))
    det.det2.register_forward_hook(lambda m, i, o: seen.__setitem__("det2", o))
    det.cls1.register_forward_hook(lambda m, i, o: seen.__setitem__("pooled", i[0]))
    out = det.explain(x)
    f_h = torch.cat([det.lstm(x)[0], x], dim=2)  # skip connection h_t (+) F_t
    assert torch.allclose(
        seen["f_star"], f_h * (1 + out.alpha[..., None]), atol=1e-6
    )  # F* = F_h + a F_h
    f_prime = torch.relu(seen["det2"])
    beta = torch.sigmoid(det.att2_global(det.att2_local(f_prime).flatten(1)))  # eq. (2)
    assert torch.allclose(out.beta, beta, atol=1e-6)
    f_2star = seen["f_star"] * (1 + beta[..., None])  # F** = F* + b F*
    assert torch.allclose(seen["pooled"], f_2star.mean(1), atol=1e-6)
    assert out.alpha.sum(1).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


def _fixed(det, outputs: JointOutputs):
    det.explain = lambda features: outputs  # the loss is checked on given network outputs
    return det


FIXED = JointOutputs(
    scores=torch.tensor([[0.1, 0.2, 0.3], [0.2, 0.9, 0.5]]),
    alpha=torch.full((2, 3), 1 / 3),
    beta=torch.tensor([[0.5] * 3, [0.25] * 3]),
    logits=torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, math.log(2.0)]]),
)
BATCH = Batch(torch.zeros(2, 3, 6), torch.tensor([0.0, 1.0]), torch.tensor([0, 2]))


def test_loss_terms_match_hand_computation():
    out = _fixed(_small(segments=3), FIXED).loss(BATCH)
    # eq. (3): hinge max(0, 1 - 0.9 + 0.3) = 0.4; smoothness 0.49 + 0.16; sparsity 1.6
    assert out["hinge"].item() == pytest.approx(0.4)
    assert out["smooth"].item() == pytest.approx(0.65)
    assert out["sparse"].item() == pytest.approx(1.6)
    assert out["loss_d"].item() == pytest.approx(0.4 + 8e-5 * 0.65 + 8e-5 * 1.6)
    # eq. (4) with batch frequencies 1/2, 1/2: weights 0.5; -log p = ln 3 (normal), ln 2 (class 2)
    assert out["loss_c"].item() == pytest.approx(0.5 * (math.log(3) + math.log(2)) / 2, abs=1e-6)
    # eq. (5): sum (1 - 1/3)^2 = 4/3 per video, sum beta = 1.5 and 0.75
    assert out["loss_att"].item() == pytest.approx(4 / 3 + 1.125, abs=1e-6)
    expected = (
        0.9 * out["loss_d"].item() + 0.1 * out["loss_c"].item() + 1e-6 * out["loss_att"].item()
    )
    assert out["loss"].item() == pytest.approx(expected, abs=1e-7)


def test_class_frequencies_and_beta_penalty_options():
    det = _fixed(
        _small(segments=3, class_frequencies=[0.5, 0.25, 0.25], beta_penalty="square"), FIXED
    )
    out = det.loss(BATCH)
    assert out["loss_c"].item() == pytest.approx(
        (0.5 * math.log(3) + 0.75 * math.log(2)) / 2, abs=1e-6
    )
    assert out["loss_att"].item() == pytest.approx(4 / 3 + (0.75 + 0.1875) / 2, abs=1e-6)


def test_hinge_uses_the_configured_margin():
    out = _fixed(_small(segments=3, margin=2.0), FIXED).loss(BATCH)
    assert out["hinge"].item() == pytest.approx(2.0 - 0.9 + 0.3)  # max(0, m - 0.9 + 0.3)


def _double_outputs(B: int) -> JointOutputs:
    return JointOutputs(
        scores=torch.full((B, 3), 0.5, dtype=torch.float64),
        alpha=torch.full((B, 3), 1 / 3, dtype=torch.float64),
        beta=torch.full((B, 3), 0.5, dtype=torch.float64),
        logits=torch.zeros(B, 3, dtype=torch.float64),  # -log p = ln 3 for every class
    )


@pytest.mark.parametrize(
    ("frequencies", "weight_sum"),
    [(None, 3 * 0.5 + 2 * (2 / 3) + 5 / 6), ([0.1, 0.3, 0.6], 3 * 0.9 + 2 * 0.7 + 0.4)],
)
def test_class_weights_are_computed_in_the_logits_dtype(frequencies, weight_sum):
    """A float64 model gets float64 weights ``1 - f_i`` (1/3, 0.1, 0.3 are inexact in float32)."""
    det = _fixed(_small(segments=3, class_frequencies=frequencies), _double_outputs(6))
    labels = torch.tensor([0.0] * 3 + [1.0] * 3)
    loss_c = det.loss(Batch(torch.zeros(6, 3, 6), labels, torch.tensor([0, 0, 0, 1, 1, 2])))[
        "loss_c"
    ]
    assert loss_c.dtype == torch.float64
    assert loss_c.item() == pytest.approx(weight_sum / 6 * math.log(3), rel=0, abs=1e-13)


@pytest.mark.parametrize("frequencies", [None, [0.5, 0.25, 0.25]])
def test_loss_is_computed_where_the_batch_is_whatever_the_default_device(frequencies):
    det = _fixed(_small(segments=3, class_frequencies=frequencies), FIXED)
    with torch.device("meta"):  # tensors made without a device would land here
        out = det.loss(BATCH)
    assert {v.device.type for v in out.values()} == {"cpu"}
    weights = (0.5, 0.5) if frequencies is None else (0.5, 0.75)
    expected = (weights[0] * math.log(3) + weights[1] * math.log(2)) / 2
    assert out["loss_c"].item() == pytest.approx(expected, abs=1e-6)


def test_bad_class_settings_are_rejected_with_reasons():
    with pytest.raises(ValueError, match="class_frequencies has 2 values, expected 3"):
        _small(class_frequencies=[0.5, 0.5])
    det = _small(segments=3)
    with pytest.raises(ValueError, match=r"class_index \[0, 5\] outside 0..2"):
        det.loss(Batch(torch.zeros(2, 3, 6), torch.tensor([0.0, 1.0]), torch.tensor([0, 5])))
    with pytest.raises(ValueError, match=r"^joint: class_index \[0, 3\] outside 0..2$"):
        det.loss(Batch(torch.zeros(2, 3, 6), torch.tensor([0.0, 1.0]), torch.tensor([0, 3])))
    with pytest.raises(ValueError, match=r"^joint: class_index \[-1, 2\] outside 0..2$"):
        det.loss(Batch(torch.zeros(2, 3, 6), torch.tensor([0.0, 1.0]), torch.tensor([-1, 2])))
    with pytest.raises(ValueError, match="built for 3 segments, got 5"):
        det(torch.zeros(1, 5, 6))


def test_binary_head_uses_video_labels_when_there_are_no_classes():
    det = _small(segments=3, n_classes=1)
    assert det.n_classes == 2 and det.cls2.out_features == 2
    out = det.loss(Batch(torch.randn(2, 3, 6), torch.tensor([0.0, 1.0]), torch.tensor([0, 0])))
    assert torch.isfinite(out["loss"])


@pytest.mark.parametrize(
    ("n_classes", "expected"),
    [(None, [0, 1, 1]), (1, [0, 1, 1]), (2, [0, 0, 1]), (3, [0, 0, 1])],
)
def test_class_targets_are_video_labels_only_without_dataset_classes(n_classes, expected):
    """A 1-class dataset (the default) gets a normal/abnormal head fed by the video labels; from 2
    classes on (Normal + anomaly classes) the targets are ``class_index``. The batch's two label
    sources disagree on purpose, so the one used shows."""
    params = JointParams(**SMALL, segments=3)
    det = Joint((6,), params) if n_classes is None else Joint((6,), params, n_classes)
    assert det.binary_head == (n_classes in (None, 1)) and det.n_classes == max(n_classes or 1, 2)
    batch = Batch(torch.zeros(3, 3, 6), torch.tensor([0.0, 1.0, 1.0]), torch.tensor([0, 0, 1]))
    targets = det.class_targets(batch)
    assert targets.dtype == torch.int64 and targets.tolist() == expected


def test_classify_gives_probabilities_over_all_classes():
    torch.manual_seed(1)
    det = _small(segments=4, n_classes=5).eval()
    probs = det.classify(torch.randn(3, 4, 6))
    assert probs.shape == (3, 5)
    assert probs.sum(1).tolist() == pytest.approx([1.0] * 3, abs=1e-6)
    assert det.classify_video(torch.randn(40, 6)).sum().item() == pytest.approx(1.0, abs=1e-6)


def test_linspace_ranges_and_pooling():
    assert linspace_ranges(50, 4) == [(0, 12), (12, 25), (25, 37), (37, 50)]
    assert linspace_ranges(3, 4) == [(0, 1), (0, 1), (1, 2), (2, 3)]  # empty range -> one snippet
    x = torch.tensor([[1.0, 5.0], [3.0, 2.0], [0.0, 9.0]])
    assert pool_ranges(x, [(0, 2), (2, 3)], "max").tolist() == [[3.0, 5.0], [0.0, 9.0]]
    assert pool_ranges(x, [(0, 2), (2, 3)], "mean").tolist() == [[2.0, 3.5], [0.0, 9.0]]


def test_score_video_segments_pools_and_spreads_back():
    torch.manual_seed(2)
    det = _small((2, 3), segments=4).eval()  # (7, 1024)-like features are flattened
    x = torch.randn(50, 2, 3)
    flat = x.reshape(50, 6)
    bounds = [(0, 12), (12, 25), (25, 37), (37, 50)]
    seg_scores = det(torch.stack([flat[a:b].amax(0) for a, b in bounds])[None])[0]
    expected = torch.cat([seg_scores[i].repeat(b - a) for i, (a, b) in enumerate(bounds)])
    assert torch.allclose(det.score_video(x), expected, atol=1e-6)
    short = det.score_video(torch.randn(3, 2, 3))  # fewer snippets than segments
    assert short.shape == (3,)


def test_per_segment_attention_weights_option():
    torch.manual_seed(5)
    det = _small(segments=4, att1_shared=False, att1_latent=5)
    assert tuple(det.att1_weight.shape) == (4, 6, 5)
    assert tuple(det.att1_bias.shape) == (4, 5) and not det.att1_bias.any()
    # initialised as a shared nn.Linear(6, 5) would be: U(-1/sqrt(n), 1/sqrt(n)), n = 6
    bound = 6**-0.5
    w = det.att1_weight.detach()
    assert -bound <= w.min().item() < -0.9 * bound and 0.9 * bound < w.max().item() <= bound
    assert det(torch.randn(2, 4, 6)).shape == (2, 4)


def test_per_segment_first_level_attention_matches_eq_1():
    det = _small((2,), segments=2, att1_shared=False, att1_latent=1)
    with torch.no_grad():
        det.att1_weight.copy_(torch.tensor([[[1.0], [2.0]], [[0.0], [1.0]]]))  # W_{L,t}: (T, n, L)
        det.att1_bias.copy_(torch.tensor([[0.5], [0.3]]))
    # latents 0.6 + 1.6 + 0.5 = 2.7 (W_{L,1}) and 0 + 0.3 (W_{L,2}) -> mean 1.5
    alpha, expected = _first_level_alpha(det, 1.5)
    assert alpha == pytest.approx(expected, abs=1e-6)


def test_videos_of_a_batch_are_scored_independently():
    """The LSTM runs over each video's segments (batch first), never across the videos."""
    torch.manual_seed(6)
    det = _small(segments=4).eval()
    x = torch.randn(3, 4, 6)
    together = det.explain(x)
    for v in range(3):
        alone = det.explain(x[v : v + 1])
        assert torch.allclose(together.scores[v], alone.scores[0], atol=1e-6)
        assert torch.allclose(together.logits[v], alone.logits[0], atol=1e-6)


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    det = _small(segments=4, n_classes=3)
    batch = Batch(
        torch.randn(4, 4, 6), torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 2])
    )
    det.loss(batch)["loss"].backward()
    missing = [
        n for n, p in det.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)
    ]
    assert not missing


def planted(n_per_class: int, T: int = 32, D: int = 64, seed: int = 0):
    """Normal videos ~ N(0, 1); abnormal ones have 3-6 consecutive bags shifted by +1, on dims 0-15
    (class 1) or 16-31 (class 2)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n_per_class, T, D, generator=g)
    bag_labels = torch.zeros(2 * n_per_class, T)
    classes = torch.zeros(2 * n_per_class, dtype=torch.long)
    for v in range(n_per_class, 2 * n_per_class):
        length = int(torch.randint(3, 7, (1,), generator=g))
        start = int(torch.randint(0, T - length + 1, (1,), generator=g))
        classes[v] = 1 + v % 2
        dims = slice(0, 16) if classes[v] == 1 else slice(16, 32)
        x[v, start : start + length, dims] += 1.0
        bag_labels[v, start : start + length] = 1
    labels = torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)])
    return x, labels, classes, bag_labels


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_learns_to_find_and_classify_planted_anomalies(precision):
    torch.manual_seed(0)
    x, y, cls, _ = planted(64, seed=1)
    x_test, _, cls_test, bag_test = planted(32, seed=2)
    det = _small((64,), n_classes=3)
    optim = torch.optim.Adam(det.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    det.train()
    for _ in range(300):
        idx = torch.cat(
            [torch.randint(0, 64, (16,), generator=g), torch.randint(64, 128, (16,), generator=g)]
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = det.loss(Batch(x[idx], y[idx], cls[idx]))["loss"]
        optim.zero_grad()
        loss.backward()
        optim.step()
    det.eval()
    scores = torch.cat([det.score_video(v) for v in x_test])
    # measured 0.91 (seed 0; 0.91-0.97 over seeds 0-3), mAA 0.875 (0.875-0.93)
    assert roc_auc_score(bag_test.reshape(-1).numpy(), scores.numpy()) > 0.85
    predicted = torch.stack([det.classify_video(v) for v in x_test]).argmax(1)
    per_class = [(predicted[cls_test == c] == c).float().mean().item() for c in range(3)]
    assert sum(per_class) / 3 > 0.8  # mean accuracy over classes (the paper's mAA)


CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize("dataset", ["ucf", "shanghaitech", "xd"])
def test_configs_hold_the_papers_settings(dataset):
    cfg = load_config(TrainConfig, CONFIGS / f"{dataset}_joint.yaml", {})
    p = JointParams.model_validate(cfg.detector.params)
    assert (p.segments, p.lstm_hidden, p.det_latent, p.lambda_d, p.lambda_att) == (
        32,
        1024,
        96,
        0.9,
        1e-6,
    )
    assert (p.lambda_smooth, p.lambda_sparse) == (8e-5, 8e-5)
    assert (cfg.optim.name, cfg.optim.lr, cfg.sampler.batch_per_class) == ("adam", 1e-4, 30)
    assert (cfg.bags.count, cfg.bags.pool) == (32, "max")


def test_loss_and_gradients_equal_those_through_the_lstm_module(monkeypatch):
    """Joint runs its LSTM as lstm_sequence (faster under bf16): in fp32 the loss and every
    parameter's gradient equal those of the same weights run through ``nn.LSTM`` itself."""
    import wsvad.detectors.joint as joint_module

    torch.manual_seed(0)
    det = _small(segments=4, det_dropout=0.0).train()
    x = torch.randn(4, 4, 6)
    batch = Batch(
        features=x,
        labels=torch.tensor([0.0, 0.0, 1.0, 1.0]),
        class_index=torch.tensor([0, 0, 1, 2]),
        video_index=torch.arange(4),
        start=None,
    )

    def loss_and_grads():
        det.zero_grad()
        loss = det.loss(batch)["loss"]
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in det.named_parameters()}

    loss, grads = loss_and_grads()
    monkeypatch.setattr(joint_module, "lstm_sequence", lambda lstm, seq: lstm(seq)[0])
    module_loss, module_grads = loss_and_grads()
    torch.testing.assert_close(loss, module_loss, rtol=1e-6, atol=1e-7)
    assert grads["lstm.weight_ih_l0"].abs().max() > 0
    for name, grad in grads.items():
        torch.testing.assert_close(grad, module_grads[name], rtol=1e-5, atol=1e-6, msg=name)
