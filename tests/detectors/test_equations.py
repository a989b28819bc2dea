"""Each detector's equations recomputed by hand from its own weights: a reference written from the
paper, not from the module, so that a changed activation, a dropped term or a wrong reduction
fails here (these are the deliberate bugs of issue #15 that an earlier suite let through)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from wsvad.detectors import Batch, build_detector
from wsvad.detectors.dam import dissimilarity_map
from wsvad.detectors.joint import JointOutputs


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


# ------------------------------------------------------------------ mil (Sultani et al., CVPR 2018)
def test_mil_scorer_is_relu_512_then_linear_32_then_sigmoid():
    """Sec. 3.3 / the released Keras model: FC 512 + ReLU, FC 32 (linear in the released code), FC 1
    + sigmoid; dropout only in training."""
    det = build_detector("mil", (10,), {"hidden1": 7, "hidden2": 5}).eval()
    x = torch.randn(3, 4, 10)
    h1 = x @ det.fc1.weight.T + det.fc1.bias
    assert (h1 < 0).any()
    h2 = torch.relu(h1) @ det.fc2.weight.T + det.fc2.bias
    assert (h2 < 0).any(), "a ReLU on the 32-unit layer must change the result"
    expected = torch.sigmoid(h2 @ det.fc3.weight.T + det.fc3.bias).squeeze(-1)
    torch.testing.assert_close(det(x), expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ salient (Watanabe et al.)
def test_salient_video_score_is_sec3_with_an_identity_fc1():
    """Sec. 3: A_1 = tanh(W_1 F), A_2 = softmax_T(W_2 A_1), M = F A_2^t, score = sigmoid(FC2(FC1
    M)) with FC1's activation the identity."""
    det = build_detector("salient", (12,), {"d_a": 5, "r": 3, "fc_hidden": 6}).eval()
    x = torch.randn(4, 9, 12)
    a1 = torch.tanh(x @ det.att1.weight.T + det.att1.bias)  # (B, T, d_a)
    a2 = torch.softmax(a1 @ det.att2.weight.T + det.att2.bias, dim=1)  # softmax over T: (B, T, r)
    m = torch.einsum("btr,btd->brd", a2, x).flatten(1)  # M = F A_2^t, (B, r*D)
    fc1 = m @ det.fc1.weight.T + det.fc1.bias
    assert (fc1 < 0).any(), "FC1 must see negative inputs for the identity to matter"
    expected = torch.sigmoid(fc1 @ det.fc2.weight.T + det.fc2.bias).squeeze(1)
    torch.testing.assert_close(det.video_scores(x), expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ joint (Majhi et al., FG 2021)
def test_joint_loss_is_eq3_to_eq6_per_pair_with_weights_one_minus_f():
    """Eq. (3) per normal/abnormal pair (not one max over the batch), eq. (4) weighted by 1 - f_i,
    eq. (5) and eq. (6), on outputs chosen so that each of those readings gives another number."""
    freq = (0.7, 0.2, 0.1)
    det = build_detector(
        "joint",
        (4,),
        {"segments": 3, "lstm_hidden": 4, "class_frequencies": list(freq)},
        n_classes=3,
    )
    scores = torch.tensor([[0.1, 0.05, 0.0], [0.5, 0.2, 0.1], [0.9, 0.3, 0.2], [0.2, 0.1, 0.15]])
    alpha = torch.softmax(torch.randn(4, 3), dim=1)
    beta = torch.rand(4, 3)
    logits = torch.randn(4, 3)
    det.explain = lambda features: JointOutputs(scores, alpha, beta, logits)
    target = torch.tensor([0, 0, 1, 2])
    batch = Batch(torch.zeros(4, 3, 4), torch.tensor([0.0, 0, 1, 1]), target)
    got = det.loss(batch)

    p = det.params
    # eq. (3): pairs (normal 0, abnormal 2) and (normal 1, abnormal 3)
    hinge = (max(0.0, 1 - 0.9 + 0.1) + max(0.0, 1 - 0.2 + 0.5)) / 2  # 0.2, 1.3 -> 0.75
    abnormal = scores[2:]
    smooth = ((abnormal[:, 1:] - abnormal[:, :-1]) ** 2).sum(1).mean()
    sparse = abnormal.sum(1).mean()
    loss_d = hinge + p.lambda_smooth * smooth + p.lambda_sparse * sparse
    weights = torch.tensor([1 - freq[t] for t in target.tolist()])
    loss_c = -(weights * torch.log_softmax(logits, 1)[torch.arange(4), target]).mean()
    loss_att = (((1 - alpha) ** 2).sum(1) + beta.sum(1)).mean()
    total = p.lambda_d * loss_d + (1 - p.lambda_d) * loss_c + p.lambda_att * loss_att
    assert float(got["hinge"]) == pytest.approx(0.75, abs=1e-6)
    assert float(got["loss_c"]) == pytest.approx(float(loss_c), abs=1e-6)
    assert float(got["loss_att"]) == pytest.approx(float(loss_att), abs=1e-6)
    assert float(got["loss"]) == pytest.approx(float(total), abs=1e-6)


# ------------------------------------------------------------------ sta (Liu et al., ICASSP 2022)
def _elman_bidirectional(x: torch.Tensor, rnn: torch.nn.RNN) -> torch.Tensor:
    """Sec. 3.1's bd-RNN by hand: h_t = ReLU(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) per direction
    and layer; ``(B, N, C) -> (B, N, 2 * hidden)``."""
    out = x
    for layer in range(rnn.num_layers):
        directions = []
        for suffix, order in (
            ("", range(out.shape[1])),
            ("_reverse", reversed(range(out.shape[1]))),
        ):
            w_ih = getattr(rnn, f"weight_ih_l{layer}{suffix}")
            w_hh = getattr(rnn, f"weight_hh_l{layer}{suffix}")
            b = getattr(rnn, f"bias_ih_l{layer}{suffix}") + getattr(
                rnn, f"bias_hh_l{layer}{suffix}"
            )
            h = torch.zeros(out.shape[0], rnn.hidden_size)
            states = [None] * out.shape[1]
            for t in order:
                h = torch.relu(out[:, t] @ w_ih.T + h @ w_hh.T + b)
                states[t] = h
            directions.append(torch.stack(states, dim=1))
        out = torch.cat(directions, dim=2)
    return out


def test_sta_scorer_is_a_two_layer_bidirectional_relu_rnn():
    det = build_detector("sta", (6,), {"rnn_hidden": 5}).eval()
    boosted = torch.randn(2, 7, 6)
    expected = torch.sigmoid(
        _elman_bidirectional(boosted, det.rnn) @ det.head.weight.T + det.head.bias
    ).squeeze(-1)
    torch.testing.assert_close(det.score_boosted(boosted), expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ dam (Majhi et al., AVSS 2021)
def test_dam_channel_attention_is_a_softmax_and_clip_attention_squashes_with_tanh():
    """Eq. 4: Channel_A = softmax(LSTM(D_nt)); eq. 5: Clip_A = sigmoid(FC(tanh(LSTM(D_nt))));
    F* = F' + Channel_A * F' then the MLP. Inputs at I3D-like scale (D = 64, values ~ 1)."""
    det = build_detector("dam", (7, 64), {"hidden": 16, "mlp_hidden": (8,)}).eval()
    clips, previous = torch.randn(5, 7, 64), torch.randn(5, 7, 64)
    with torch.no_grad():
        f_prime = det.feature_lstm(clips)[1][0][-1]
        g = det.dam_lstm(dissimilarity_map(clips, previous, "dist"))[1][0][-1]
        clip_a = torch.sigmoid(torch.tanh(g) @ det.clip_fc.weight.T + det.clip_fc.bias).squeeze(-1)
        expected_d = det.scorer(f_prime + torch.softmax(g, dim=-1) * f_prime).squeeze(-1)
        d, got_clip_a = det.clip_outputs(clips, previous)
    assert (g.abs() > 0.5).any(), "tanh must matter: some LSTM outputs far from 0"
    torch.testing.assert_close(got_clip_a, clip_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(d, expected_d, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ rtfm (Tian et al., ICCV 2021)
def _bn(x: torch.Tensor, bn: torch.nn.BatchNorm1d) -> torch.Tensor:
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def test_rtfm_mtn_pyramid_has_dilations_1_2_4():
    """Sec. 3.2 (MTN): three kernel-3 convolutions with dilations 1, 2, 4 beside a non-local branch,
    fused by a kernel-3 convolution and added to the input; recomputed with F.conv1d."""
    det = build_detector("rtfm", (16,), {"branch_channels": 4, "non_local_zero_init": False})
    det.eval()
    for bn in (m for m in det.modules() if isinstance(m, torch.nn.BatchNorm1d)):
        bn.running_mean.uniform_(-0.5, 0.5)  # non-trivial statistics, so BN cannot hide a swap
        bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 20, 16)
    h = x.transpose(1, 2)
    mtn = det.mtn
    pyramid = []
    for conv_block, dilation in zip(mtn.dilated, (1, 2, 4), strict=True):
        conv = conv_block[0]
        y = F.conv1d(h, conv.weight, conv.bias, padding=dilation, dilation=dilation)
        pyramid.append(_bn(torch.relu(y), conv_block[2]))
    local = mtn.non_local(mtn.reduce(h))
    fused = _bn(
        torch.relu(F.conv1d(torch.cat([*pyramid, local], 1), mtn.fuse[0].weight, padding=1)),
        mtn.fuse[2],
    )
    with torch.no_grad():
        torch.testing.assert_close(mtn(x), (fused + h).transpose(1, 2), rtol=0, atol=1e-5)


def test_rtfm_magnitudes_in_training_see_the_dropout_after_the_mtn():
    """The public code applies dropout (0.7) to the MTN output before the feature magnitudes are
    taken: in training about 70 % of the feature entries whose norms rank the top-k are zero."""
    det = build_detector("rtfm", (64,), {"branch_channels": 8}).train()
    feats = det.explain(torch.randn(4, 32, 64)).features
    zero_fraction = float((feats == 0).float().mean())
    assert zero_fraction == pytest.approx(0.7, abs=0.03)
    det.eval()
    assert float((det.explain(torch.randn(4, 32, 64)).features == 0).float().mean()) < 0.01
