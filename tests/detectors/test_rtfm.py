"""RTFM detector: non-local block, MTN residual, top-k magnitude losses, crops, learning."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from wsvad.config import load_config
from wsvad.detectors import Batch, build_detector
from wsvad.detectors.rtfm import MultiScaleTemporal, NonLocal1d, RtfmOutputs, RtfmParams
from wsvad.train.config import TrainConfig


def test_non_local_block_matches_hand_computation():
    block = NonLocal1d(2).eval()
    with torch.no_grad():
        block.theta.weight.copy_(torch.tensor([[[1.0], [0.0]]]))
        block.phi.weight.copy_(torch.tensor([[[0.0], [1.0]]]))
        block.g.weight.copy_(torch.tensor([[[1.0], [1.0]]]))
        block.out[0].weight.copy_(torch.tensor([[[1.0]], [[0.0]]]))
        block.out[1].weight.fill_(1.0)
        for conv in (block.theta, block.phi, block.g, block.out[0]):
            conv.bias.zero_()
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (B=1, C=2, T=2)
    # theta = [1, 2], phi = [3, 4]: affinity = [[3, 4], [6, 8]] / T; g = [4, 6]; y = [18, 36]
    s = math.sqrt(1 + 1e-5)  # BatchNorm in eval with running mean 0, var 1
    assert block(x)[0].tolist() == [
        pytest.approx([1 + 18 / s, 2 + 36 / s]),
        pytest.approx([3.0, 4.0]),
    ]


def test_blocks_start_as_identity_residuals():
    torch.manual_seed(0)
    det = build_detector("rtfm", (16,), {"branch_channels": 8}).eval()
    h = torch.randn(2, 8, 5)
    assert torch.allclose(det.mtn.non_local(h), h)  # W ends in a zero-initialised BatchNorm
    mtn = MultiScaleTemporal(16, 8).eval()
    torch.nn.init.zeros_(mtn.fuse[2].weight)
    x = torch.randn(3, 7, 16)
    assert torch.allclose(mtn(x), x)  # fused branches vanish, the residual remains


def test_pyramid_dilations_are_1_2_4_and_the_non_local_input_is_rectified():
    mtn = MultiScaleTemporal(1, 1).eval()
    impulse = torch.zeros(1, 1, 17)
    impulse[0, 0, 8] = 1.0
    for branch, d in zip(mtn.dilated, (1, 2, 4), strict=True):
        conv = branch[0]
        torch.nn.init.ones_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
        response = conv(impulse)[0, 0]  # kernel 3 at dilation d: taps at t - d, t, t + d
        assert response.nonzero().flatten().tolist() == [8 - d, 8, 8 + d]
    torch.nn.init.ones_(mtn.reduce[0].weight)
    assert mtn.reduce(torch.tensor([[[-2.0, 3.0, -0.5]]])).tolist() == [[[0.0, 3.0, 0.0]]]


def test_parameter_count_matches_the_published_figure():
    """24,718,849 for the 2048-d features of the RTFM code (Watanabe et al., ICIP 2022, Table 6)."""
    det = build_detector("rtfm", (2048,), {})
    assert sum(p.numel() for p in det.parameters()) == 24_718_849


def _fixed(params, scores, feats):
    det = build_detector("rtfm", (2,), {"branch_channels": 2, "magnitude_dropout": False, **params})
    det.explain = lambda features: RtfmOutputs(scores, feats)  # losses checked on given outputs
    return det


SCORES = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.6, 0.1, 0.8, 0.2]])
FEATS = torch.tensor(
    [
        [[[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [1.0, 1.0]]],
        [[[3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [0.0, 1.0]]],
    ]
)  # (B=2, C=1, T=4, D=2): top-2 magnitudes at t = {1, 3} (normal) and t = {2, 0} (abnormal)
BATCH = Batch(torch.zeros(2, 4, 2), torch.tensor([0.0, 1.0]), torch.tensor([0, 1]))


def test_code_losses_match_hand_computation():
    out = _fixed({"k": 2, "margin": 10.0}, SCORES, FEATS).loss(BATCH)
    assert out["bce"].item() == pytest.approx(
        -math.log(0.7), abs=1e-6
    )  # top-k mean scores 0.3, 0.7
    # |10 - ||mean(6,8; 3,4)||| = |10 - 7.5|; ||mean(0,2; 1,1)|| = sqrt(2.5); squared sum
    assert out["magnitude"].item() == pytest.approx((2.5 + math.sqrt(2.5)) ** 2, abs=1e-4)
    assert out["smooth"].item() == pytest.approx(0.25 + 0.49 + 0.36, abs=1e-6)
    assert out["sparse"].item() == pytest.approx(
        math.sqrt(1.05), abs=1e-6
    )  # l2 norm of abnormal scores
    expected = (
        -math.log(0.7) + 1e-4 * (2.5 + math.sqrt(2.5)) ** 2 + 8e-4 * 1.1 + 8e-3 * math.sqrt(1.05)
    )
    assert out["loss"].item() == pytest.approx(expected, abs=1e-5)


def test_paper_variants_match_hand_computation():
    params = {"k": 2, "margin": 10.0, "magnitude_loss": "paper", "sparsity_norm": "l1"}
    out = _fixed(params, SCORES, FEATS).loss(BATCH)
    # hinge max(0, m - mean(10, 5) + mean(2, sqrt 2))
    assert out["magnitude"].item() == pytest.approx(10 - 7.5 + (2 + math.sqrt(2)) / 2, abs=1e-5)
    assert out["sparse"].item() == pytest.approx(1.7, abs=1e-6)


def test_smoothness_across_or_within_videos():
    scores = torch.tensor([[0.1] * 2, [0.1] * 2, [0.0, 0.5], [0.5, 0.5]])
    feats = torch.rand(4, 1, 2, 2)
    batch = Batch(
        torch.zeros(4, 2, 2), torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1])
    )
    across = _fixed({"k": 1}, scores, feats).loss(batch)["smooth"].item()
    within = (
        _fixed({"k": 1, "smooth_across_videos": False}, scores, feats).loss(batch)["smooth"].item()
    )
    assert across == pytest.approx(0.25 + 0.0 + 0.0)  # flat [0, .5, .5, .5] as in the code
    assert within == pytest.approx((0.25 + 0.0) / 2)


def test_top_k_uses_a_dropout_mask_only_when_asked():
    torch.manual_seed(1)
    mags = torch.arange(10.0).repeat(2, 1)
    det = build_detector(
        "rtfm", (4,), {"branch_channels": 2, "k": 3, "magnitude_dropout": False}
    ).train()
    assert sorted(det._top_k(mags)[0].tolist()) == [7, 8, 9]
    masked = build_detector("rtfm", (4,), {"branch_channels": 2, "k": 3}).train()
    picks = {tuple(sorted(masked._top_k(mags)[0].tolist())) for _ in range(20)}
    assert len(picks) > 1  # a random ~30 % of the snippets compete in each draw
    assert sorted(masked.eval()._top_k(mags)[0].tolist()) == [7, 8, 9]  # no mask at eval


def test_crops_inside_average_scores_over_crops():
    torch.manual_seed(2)
    det = build_detector("rtfm", (3, 8), {"branch_channels": 4, "crops_inside": True}).eval()
    x = torch.randn(20, 3, 8)  # (N, C, D)
    per_crop = torch.stack([det.score_video(x[:, c]) for c in range(3)])
    assert torch.allclose(det.score_video(x), per_crop.mean(0), atol=1e-6)
    batch = Batch(
        torch.randn(4, 6, 3, 8), torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1])
    )
    assert torch.isfinite(det.train().loss(batch)["loss"])
    with pytest.raises(
        ValueError, match=r"crops_inside needs feature_shape \(C, \*F\), got \(8,\)"
    ):
        build_detector("rtfm", (8,), {"crops_inside": True})


# Two pairs (B = 4, T = 3, k = 1): the magnitude hinge is active for one pair only, so the
# per-pair reduction of the paper's loss, the within-video smoothness (T > 2) and the l1 sparsity
# (per video, then averaged) are all seen.
SCORES4 = torch.tensor(
    [[0.1, 0.2, 0.3], [0.2, 0.4, 0.1], [0.6, 0.1, 0.8], [0.2, 0.9, 0.5]]
)  # (B=4, T=3)
FEATS4 = torch.tensor(
    [
        [[[1.0, 0.0], [0.0, 0.5], [0.0, 0.0]]],  # normal: top-1 magnitude 1 at t = 0
        [[[1.0, 0.0], [0.0, 8.0], [0.0, 0.0]]],  # normal: 8 at t = 1
        [[[3.0, 4.0], [0.0, 1.0], [0.0, 0.0]]],  # abnormal: 5 at t = 0
        [[[0.0, 0.0], [12.0, 16.0], [0.0, 2.0]]],  # abnormal: 20 at t = 1
    ]
)  # (B=4, C=1, T=3, D=2)


def test_paper_variants_reduce_per_pair_and_per_video():
    params = {
        "k": 1,
        "margin": 10.0,
        "magnitude_loss": "paper",
        "sparsity_norm": "l1",
        "smooth_across_videos": False,
    }
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)  # cast (e.g. from NumPy)
    batch = Batch(torch.zeros(4, 3, 2), labels, labels.long())
    out = _fixed(params, SCORES4, FEATS4).loss(batch)
    # top-1 scores 0.1, 0.4 (normal), 0.6, 0.9 (abnormal)
    bce = -(math.log(0.9) + math.log(0.6)) / 2
    assert out["bce"].item() == pytest.approx(bce, abs=1e-6)
    # hinges max(0, 10 - 5 + 1) = 6 and max(0, 10 - 20 + 8) = 0, averaged over the pairs
    assert out["magnitude"].item() == pytest.approx(3.0, abs=1e-5)
    # within each abnormal video: .25 + .49 and .49 + .16, averaged over videos
    assert out["smooth"].item() == pytest.approx(0.695, abs=1e-6)
    assert out["sparse"].item() == pytest.approx((1.5 + 1.6) / 2, abs=1e-6)  # l1 per video, mean
    expected = bce + 1e-4 * 3.0 + 8e-4 * 0.695 + 8e-3 * 1.55
    assert out["loss"].item() == pytest.approx(expected, abs=1e-5)


def test_magnitudes_are_crop_averaged_norms_of_the_mtn_output():
    det = build_detector("rtfm", (2, 2), {"branch_channels": 2, "crops_inside": True}).eval()
    torch.nn.init.zeros_(det.mtn.fuse[2].weight)  # fused branches vanish: the MTN is the identity
    x = torch.tensor(
        [
            [[[3.0, 4.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 3.0]], [[6.0, 8.0], [5.0, 12.0]]],
            [[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [8.0, 6.0]], [[2.0, 0.0], [0.0, 4.0]]],
        ]
    )  # (B=2, T=3, C=2, D=2)
    # crop norms (5, 0), (1, 3), (10, 13) and (1, 1), (0, 10), (2, 4), averaged over the crops
    assert det.magnitudes(x).tolist() == [
        pytest.approx([2.5, 2.0, 11.5]),
        pytest.approx([1.0, 5.0, 3.0]),
    ]
    torch.manual_seed(4)
    det = build_detector("rtfm", (3, 8), {"branch_channels": 4, "crops_inside": True}).eval()
    x = torch.randn(2, 5, 3, 8)  # (B, T, C, D)
    with torch.no_grad():
        per_crop = torch.stack([det.mtn(x[:, :, c]).norm(dim=2) for c in range(3)])  # (C, B, T)
        assert torch.allclose(det.magnitudes(x), per_crop.mean(0), atol=1e-5)


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    det = build_detector("rtfm", (8,), {"branch_channels": 4, "k": 2})
    optim = torch.optim.SGD(det.parameters(), lr=0.1)
    batch = Batch(
        torch.randn(4, 6, 8), torch.tensor([0.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1])
    )
    for _ in range(2):  # the non-local block's zero-initialised output gate opens after one step
        optim.zero_grad()
        det.loss(batch)["loss"].backward()
        optim.step()
    missing = [
        n for n, p in det.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)
    ]
    assert not missing


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16: the fusing conv via conv.py
def test_learns_to_find_planted_anomalies(auc_after_training, precision):
    torch.manual_seed(0)
    det = build_detector("rtfm", (64,), {"branch_channels": 16})
    optim = torch.optim.Adam(det.parameters(), lr=1e-3, weight_decay=5e-3)
    auc = auc_after_training(det, optim, steps=150, per_class=12, precision=precision)
    assert auc > 0.9  # measured 0.986 fp32, 0.985 bf16


CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize("dataset", ["ucf", "shanghaitech", "xd"])
def test_configs_hold_the_codes_settings(dataset):
    cfg = load_config(TrainConfig, CONFIGS / f"{dataset}_rtfm.yaml", {})
    p = RtfmParams.model_validate(cfg.detector.params)
    assert (p.k, p.margin, p.alpha, p.lambda_smooth, p.lambda_sparse, p.dropout) == (
        3,
        100.0,
        1e-4,
        8e-4,
        8e-3,
        0.7,
    )
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("adam", 1e-3, 5e-3)
    assert (cfg.sampler.batch_per_class, cfg.iterations, cfg.bags.count) == (32, 15000, 32)
