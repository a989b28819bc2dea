"""STA (Liu et al., ICASSP 2022): criss-cross attention, mutual cosine embedding loss, eq. 6,
test segments, learning."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch.utils.checkpoint import set_checkpoint_early_stop

from wsvad.detectors import Batch, build_detector
from wsvad.detectors.sta import CrissCrossAttention, mutual_cosine_embedding_loss


def _sign_attention(channels=3):
    """q = k = x * (1, ..., 1): the cosine of two positions is sign(x) * sign(y)."""
    cca = CrissCrossAttention(channels)
    with torch.no_grad():
        for conv in (cca.query, cca.key):
            conv.weight.fill_(1.0)
            conv.bias.zero_()
    return cca


def test_criss_cross_with_equal_directions_averages_row_and_column():
    fmap = torch.tensor(
        [[[1.0, 2.0], [3.0, 4.0]]]
    )  # (B=1, N=2, C=2), all positive: every cosine is 1
    with torch.no_grad():
        out = _sign_attention()(fmap)
    # uniform softmax over the N + C - 1 = 3 criss-cross positions, plus the residual F (eq. 3)
    expected = [
        [(1 + 2 + 3) / 3 + 1, (1 + 2 + 4) / 3 + 2],
        [(3 + 4 + 1) / 3 + 3, (3 + 4 + 2) / 3 + 4],
    ]
    assert torch.allclose(out[0], torch.tensor(expected))


def test_criss_cross_softmax_weights_follow_the_cosines():
    fmap = torch.tensor([[[1.0, -1.0], [-1.0, 1.0]]])
    with torch.no_grad():
        out = _sign_attention()(fmap)
    e = math.e
    # position (0, 0), x = 1: row (0,0) cos 1 value 1, (0,1) cos -1 value -1; column (1,0) cos -1
    # value -1
    expected_00 = (e * 1 + (1 / e) * -1 + (1 / e) * -1) / (e + 2 / e) + 1
    assert float(out[0, 0, 0]) == pytest.approx(expected_00)


def test_criss_cross_builds_its_masks_on_the_input_device():
    """The column mask is made where the map lives (on a GPU a CPU mask would not broadcast);
    the meta device checks that here: shapes only, every tensor must be on it."""
    cca = CrissCrossAttention(3).to("meta")
    assert cca(torch.empty(2, 3, 4, device="meta")).shape == (2, 3, 4)


def test_two_passes_connect_every_pair_of_positions():
    cca = CrissCrossAttention(4)
    fmap = torch.randn(1, 3, 5, requires_grad=True)
    (once,) = torch.autograd.grad(cca(fmap)[0, 0, 0], fmap)
    assert float(once[0, 1, 1]) == 0.0  # (1, 1) shares neither row nor column with (0, 0)
    assert float(once[0, 0, 3]) != 0.0 and float(once[0, 2, 0]) != 0.0
    (twice,) = torch.autograd.grad(cca(cca(fmap))[0, 0, 0], fmap)
    assert bool((twice != 0).all())


def test_mutual_cosine_embedding_loss_at_the_margin():
    normal = torch.tensor([[[1.0, 0.0], [0.5, math.sqrt(0.75)]]])  # cosine 0.5
    abnormal = torch.tensor(
        [[[1.0, 0.0], [0.4, math.sqrt(0.84)]]], requires_grad=True
    )  # cosine 0.4 = xi
    loss = mutual_cosine_embedding_loss(normal, abnormal, xi=0.4)
    assert float(loss.detach()) == pytest.approx((1 - 0.5) + 0.4)
    # above the margin the abnormal pair is ignored (min(cos, xi) = xi): no gradient reaches it
    above = torch.tensor([[[1.0, 0.0], [0.9, math.sqrt(0.19)]]], requires_grad=True)
    loss_above = mutual_cosine_embedding_loss(normal, above, xi=0.4)
    assert float(loss_above.detach()) == pytest.approx(0.9)
    (grad,) = torch.autograd.grad(loss_above, above)
    assert float(grad.abs().sum()) == 0.0
    below = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], requires_grad=True)  # cosine 0 < xi
    (grad,) = torch.autograd.grad(mutual_cosine_embedding_loss(normal, below, xi=0.4), below)
    assert float(grad.abs().sum()) > 0.0


def test_mutual_cosine_embedding_loss_averages_all_pairs():
    normal = torch.tensor(
        [[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]]
    )  # pair cosines 1, 0, 0 -> mean 1/3
    abnormal = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0]]])  # -1, 0, 0 -> mean -1/3
    assert float(mutual_cosine_embedding_loss(normal, abnormal)) == pytest.approx(1 - 1 / 3 - 1 / 3)


def test_mutual_cosine_embedding_loss_averages_over_video_pairs():
    normal = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])  # cosines 1 and 0
    abnormal = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]], [[0.0, 1.0], [0.0, 3.0]]])  # -1 and 1
    # pair 1: (1 - 1) + (-1); pair 2: (1 - 0) + min(1, 0.4) -> mean (-1 + 1.4) / 2
    assert float(mutual_cosine_embedding_loss(normal, abnormal)) == pytest.approx(0.2)
    meta = torch.empty(2, 5, 3, device="meta")  # index lists, no data-dependent mask
    assert mutual_cosine_embedding_loss(meta, meta).shape == ()


def test_mutual_cosine_embedding_loss_default_margin_is_the_papers():
    normal = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # cosine 0
    abnormal = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])  # cosine 1, clipped to xi = 0.4 (eq. 4)
    assert float(mutual_cosine_embedding_loss(normal, abnormal)) == pytest.approx(1.0 + 0.4)


def _loss_on_set_outputs(monkeypatch, **params):
    """STA's loss on one normal and one abnormal video whose boosted features (unit rows: the
    cosines are 0.5 and 0.4) and clip scores (0.3, 0.5 normal; 0.2, 0.6 abnormal) are set."""
    torch.manual_seed(0)
    det = build_detector("sta", (2,), {"rnn_hidden": 4, **params})
    boosted = torch.tensor(
        [[[1.0, 0.0], [0.5, math.sqrt(0.75)]], [[1.0, 0.0], [0.4, math.sqrt(0.84)]]]
    )
    scores = torch.tensor([[0.3, 0.5], [0.2, 0.6]])  # normal video, then abnormal
    monkeypatch.setattr(det, "boost", lambda features: boosted)
    monkeypatch.setattr(det, "score_boosted", lambda b: scores)
    labels = torch.tensor([0.0, 1.0])
    return det.loss(Batch(torch.zeros(2, 2, 2), labels, labels.long()))


def test_total_loss_hand_computed(monkeypatch):
    losses = _loss_on_set_outputs(monkeypatch)
    # hinge 1 - 0.6 + 0.5 = 0.9; smoothness 0.4^2 = 0.16; sparsity 0.8; MCE 0.5 + 0.4 = 0.9
    assert float(losses["hinge"]) == pytest.approx(0.9)
    assert float(losses["mce"]) == pytest.approx(0.9)
    assert float(losses["smooth"]) == pytest.approx(0.16)
    assert float(losses["sparse"]) == pytest.approx(0.8)
    assert float(losses["loss"]) == pytest.approx(0.02 * 0.9 + 0.9 + 2e-4 * 0.16 + 4e-5 * 0.8)


def test_total_loss_uses_the_margin_and_xi_given(monkeypatch):
    losses = _loss_on_set_outputs(monkeypatch, margin=0.5, xi=0.2)
    # hinge 0.5 - 0.6 + 0.5 = 0.4 (margin 1 would give 0.9); MCE (1 - 0.5) + min(0.4, 0.2) = 0.7
    assert float(losses["hinge"]) == pytest.approx(0.4)
    assert float(losses["mce"]) == pytest.approx(0.7)
    assert float(losses["loss"]) == pytest.approx(0.02 * 0.7 + 0.4 + 2e-4 * 0.16 + 4e-5 * 0.8)


@pytest.mark.parametrize("n_videos, chunk", [(4, 1), (4, 2), (6, 4)])
def test_checkpointed_passes_give_the_same_loss_and_gradients(n_videos, chunk):
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(n_videos, 6, 10, generator=g)
    labels = torch.tensor([0.0] * (n_videos // 2) + [1.0] * (n_videos // 2))
    results = []
    for checkpoint_videos in (0, chunk):
        torch.manual_seed(0)
        det = build_detector(
            "sta", (10,), {"rnn_hidden": 8, "checkpoint_videos": checkpoint_videos}
        )
        calls: list[int] = []  # videos per attention pass: the forward's, then the recomputation
        det.attention[0].register_forward_hook(
            lambda m, i, out, calls=calls: calls.append(len(out))
        )
        # early stop off: the backward re-runs each chunk's passes in full, so the count is exact
        with set_checkpoint_early_stop(False):
            loss = det.loss(Batch(feats, labels, labels.long()))["loss"]
            loss.backward()
        grad = det.attention[0].query.weight.grad.clone()
        results.append((float(loss.detach()), grad, calls))
    assert results[0][0] == pytest.approx(results[1][0])
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)
    assert results[0][2] == [n_videos, n_videos]  # two passes over the whole batch, kept
    chunks = [min(chunk, n_videos - i) for i in range(0, n_videos, chunk)]
    forward = [size for size in chunks for _ in range(2)]  # two passes per chunk
    assert results[1][2][: len(forward)] == forward
    # ... run again in the backward pass (in whichever order autograd reaches the chunks)
    assert sorted(results[1][2][len(forward) :]) == sorted(forward)


def test_score_video_pools_long_videos_into_segments():
    torch.manual_seed(0)
    det = build_detector("sta", (10,), {"rnn_hidden": 8, "test_segments": 4}).eval()
    video = torch.randn(9, 10)  # linspace(0, 9, 5) floored: 0, 2, 4, 6, 9
    pooled = torch.stack(
        [video[0:2].mean(0), video[2:4].mean(0), video[4:6].mean(0), video[6:9].mean(0)]
    )
    with torch.no_grad():
        expected = det(pooled.unsqueeze(0))[0]
    assert torch.allclose(
        det.score_video(video), expected.repeat_interleave(torch.tensor([2, 2, 2, 3]))
    )
    short = torch.randn(3, 10)
    with torch.no_grad():
        assert torch.allclose(det.score_video(short), det(short.unsqueeze(0))[0])


def test_parameter_count_errors_and_unshared_passes():
    torch.manual_seed(0)
    det = build_detector("sta", (1024,), {})
    # q, k 1x1 convs (2 x 20) + bd-RNN (2 x 73,792 + 2 x 12,416) + FC 128 -> 1 (129)
    assert sum(p.numel() for p in det.parameters()) == 164_521
    assert len(build_detector("sta", (8,), {"share_weights": False}).attention) == 2
    with pytest.raises(ValueError) as caught:
        build_detector("sta", (7, 1024), {})
    assert str(caught.value) == (
        "sta needs one feature vector per snippet, (C,); got feature_shape (7, 1024)"
    )
    with pytest.raises(ValueError) as caught:
        det.boost(torch.zeros(3, 1024))
    assert str(caught.value) == "sta expects (B, N, C) features, got (3, 1024)"


def test_unshared_passes_apply_their_own_attention_in_turn():
    torch.manual_seed(0)
    det = build_detector("sta", (5,), {"rnn_hidden": 2, "share_weights": False})
    first, second = det.attention
    fmap = torch.randn(2, 3, 5)
    with torch.no_grad():
        assert torch.allclose(det.boost(fmap), second(first(fmap)))
        assert not torch.allclose(det.boost(fmap), first(first(fmap)), atol=1e-4)


def test_bd_rnn_scorer_by_hand():
    """sec. 2.1 / 3.1: 2-layer bidirectional ReLU RNN then FC + sigmoid, recomputed in numpy."""
    torch.manual_seed(0)
    det = build_detector("sta", (3,), {"rnn_hidden": 2})
    boosted = torch.randn(1, 4, 3)
    with torch.no_grad():
        scores = det.score_boosted(boosted)
    w = {k: v.double().numpy() for k, v in det.rnn.state_dict().items()}
    layer_in = boosted[0].double().numpy()  # (N, C)
    for layer in range(2):
        directions = []
        for suffix, order in (("", range(4)), ("_reverse", range(3, -1, -1))):
            key = f"l{layer}{suffix}"
            h, out = np.zeros(2), np.zeros((4, 2))
            for t in order:
                z = w[f"weight_ih_{key}"] @ layer_in[t] + w[f"bias_ih_{key}"]
                h = np.maximum(z + w[f"weight_hh_{key}"] @ h + w[f"bias_hh_{key}"], 0.0)
                out[t] = h
            directions.append(out)
        layer_in = np.concatenate(directions, axis=1)  # (N, 2 * hidden)
    head_w, head_b = det.head.weight.double().detach().numpy(), det.head.bias.double().detach()
    expected = 1.0 / (1.0 + np.exp(-(layer_in @ head_w.T)[:, 0] - float(head_b)))
    assert np.abs(layer_in).sum() > 0  # the ReLU units are not all off
    assert np.allclose(scores[0].double().numpy(), expected, atol=1e-6)


def test_sta_learns_planted_anomalies():
    g = torch.Generator().manual_seed(0)
    T, D = 16, 32
    direction = torch.randn(D, generator=g)
    direction = direction / direction.norm() * 3.0

    def videos(n):
        x, y = torch.randn(n, T, D, generator=g), torch.zeros(n, T)
        for i in range(1, n, 2):
            s = int(torch.randint(0, T - 5, (1,), generator=g))
            e = s + int(torch.randint(2, 6, (1,), generator=g))
            x[i, s:e] += direction
            y[i, s:e] = 1
        return x, y

    train_x, _ = videos(80)
    normal, abnormal = train_x[0::2], train_x[1::2]
    test_x, test_y = videos(40)
    torch.manual_seed(0)
    det = build_detector("sta", (D,), {"checkpoint_videos": 0})
    opt = torch.optim.Adam(det.parameters(), lr=1e-3)
    labels = torch.tensor([0.0] * 5 + [1.0] * 5)
    for _ in range(150):
        i, j = torch.randint(0, 40, (5,), generator=g), torch.randint(0, 40, (5,), generator=g)
        loss = det.loss(Batch(torch.cat([normal[i], abnormal[j]]), labels, labels.long()))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    det.eval()
    scores = torch.cat([det.score_video(x) for x in test_x])
    assert roc_auc_score(test_y.flatten().numpy(), scores.numpy()) > 0.85


def _reference_criss_cross(cca: CrissCrossAttention, fmap: torch.Tensor) -> torch.Tensor:
    """Eq. 1-3 written out with the full (B, N, C, C) row and (B, N, C, N) column tensors."""
    q, k = cca.unit_queries_keys(fmap)
    row = torch.einsum("bijd,bind->bijn", q, k)
    col = torch.einsum("bijd,bmjd->bijm", q, k)
    not_centre = ~torch.eye(fmap.shape[1], dtype=torch.bool).unsqueeze(1)  # (N, 1, N)
    e_row, e_col = row.exp(), col.exp() * not_centre
    norm = e_row.sum(dim=-1) + e_col.sum(dim=-1)
    aggregated = torch.einsum("bijn,bin->bij", e_row, fmap) + torch.einsum(
        "bijm,bmj->bij", e_col, fmap
    )
    return aggregated / norm + fmap


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_fused_criss_cross_equals_the_written_out_equations(dtype, rtol):
    torch.manual_seed(0)
    cca = CrissCrossAttention(10).to(dtype)
    fmap = torch.randn(3, 7, 37, dtype=dtype)  # 21 rows: not a multiple of the row block
    results = []
    for attend in (cca, lambda x: _reference_criss_cross(cca, x)):
        x = fmap.clone().requires_grad_(True)
        out = attend(attend(x))  # two passes, as the detector runs them
        weights = torch.linspace(-1, 1, out.numel(), dtype=dtype).reshape(out.shape)
        grads = torch.autograd.grad((out * weights).sum(), [x, cca.query.weight, cca.key.weight])
        results.append((out.detach(), *grads))
    for fused, reference in zip(*results, strict=True):
        scale = reference.abs().max()
        assert float((fused - reference).abs().max()) <= rtol * float(scale)
    assert float(results[1][2].abs().max()) > 0  # the query weights do get a gradient


def test_fused_criss_cross_runs_under_bf16_autocast():
    """The train config's ``precision: bf16`` autocast: the fused row attention runs its matmuls
    in bf16 and hands float32 gradients back, close to the fp32 ones."""
    torch.manual_seed(0)
    cca = CrissCrossAttention(10)
    fmap = torch.randn(2, 6, 48)
    grads = []
    for bf16 in (False, True):
        x = fmap.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = cca(cca(x))
        (grad,) = torch.autograd.grad(out.float().square().sum(), x)
        grads.append((out.float().detach(), grad))
    assert grads[1][1].dtype == torch.float32
    assert not torch.equal(grads[1][0], grads[0][0])  # bf16 did run
    assert torch.allclose(grads[1][0], grads[0][0], rtol=0.05, atol=0.05)
    assert torch.allclose(grads[1][1], grads[0][1], rtol=0.05, atol=0.1)
