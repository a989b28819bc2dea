"""DAM (Majhi et al., AVSS 2021): dissimilarity measures, attention wiring, weighted ranking loss,
streaming, learning."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from wsvad.detectors import Batch, build_detector
from wsvad.detectors.dam import (
    DamOutputs,
    DamParams,
    DamStream,
    dissimilarity,
    dissimilarity_map,
    previous_clips,
    stream_scores,
)


def _small(**params):
    torch.manual_seed(0)
    return build_detector("dam", (7, 16), {"hidden": 8, "mlp_hidden": (8,), **params})


def test_dist_dissimilarity_of_two_known_clips():
    current = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # (t=2, n=3)
    previous = torch.tensor([[0.0, 2.0, 5.0], [4.0, 1.0, 6.0]])
    d_n, d_t = dissimilarity(current, previous, "dist")
    assert d_n.tolist() == [1.0, 4.0, 2.0]  # |diff| summed over t, per channel (eq. 1)
    assert d_t.tolist() == [3.0, 4.0]  # summed over n, per temporal row (eq. 2)
    # eq. 3: inflate both to (t, n) and multiply
    assert dissimilarity_map(current, previous, "dist").tolist() == [
        [3.0, 12.0, 6.0],
        [4.0, 16.0, 8.0],
    ]


def test_cov_dissimilarity_is_the_cross_covariance_diagonal():
    current = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    previous = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    d_n, d_t = dissimilarity(current, previous, "cov")
    # channel 0: (-1)(1) + (1)(-1) over t=2 -> -1; channel 1: (-2)(-2) + (2)(2) -> 4
    assert d_n.tolist() == [-1.0, 4.0]
    # row 0: (-.5)(1) + (.5)(-1) over n=2 -> -0.5; row 1: (-1.5)(-2) + (1.5)(2) -> 3
    assert d_t.tolist() == [-0.5, 3.0]
    a, b = current.numpy(), previous.numpy()
    assert np.isclose(np.cov(a[:, 1], b[:, 1], bias=True)[0, 1], 4.0)
    assert dissimilarity_map(current, previous, "cov").tolist() == [[0.5, -2.0], [-3.0, 12.0]]


def test_dissimilarity_of_a_batch_of_clips():
    """``(M, t, n)`` clips: D_n sums / averages over the t rows, D_t over the n channels."""
    current = torch.tensor(
        [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[0.0, 0.0, 0.0], [2.0, 0.0, 1.0]]]
    )  # (M=2, t=2, n=3)
    previous = torch.tensor(
        [[[0.0, 2.0, 5.0], [4.0, 1.0, 6.0]], [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]]
    )
    d_n, d_t = dissimilarity(current, previous, "dist")
    assert d_n.tolist() == [[1.0, 4.0, 2.0], [3.0, 1.0, 2.0]]
    assert d_t.tolist() == [[3.0, 4.0], [3.0, 3.0]]
    d_n, d_t = dissimilarity(current, previous, "dist", "mean")
    assert d_n.tolist() == [[0.5, 2.0, 1.0], [1.5, 0.5, 1.0]]
    assert torch.allclose(d_t, torch.tensor([[1.0, 4 / 3], [1.0, 1.0]]))
    # cov, clip 0, channel k over the t rows: c - mean c = (-1.5, 1.5); p = (0, 4), (2, 1), (5, 6)
    # -> D_n = (6, -1.5, 1.5) / 2; row j over the n channels: c - mean c = (-1, 0, 1) for both rows;
    # p = (0, 2, 5), (4, 1, 6) -> D_t = (5, 2) / 3 (eq. 1-2 as covariances)
    d_n, d_t = dissimilarity(current, previous, "cov")
    assert torch.allclose(d_n[0], torch.tensor([3.0, -0.75, 0.75]))
    assert torch.allclose(d_t[0], torch.tensor([5 / 3, 2 / 3]))
    # clip 1: c - mean c = (-1, 1), (0, 0), (-0.5, 0.5) per channel, p = (1, 0) in each -> D_n;
    # rows: c - mean c = 0 and (1, -1, 0), p rows (1, 1, 1) and 0 -> D_t = 0
    assert torch.allclose(d_n[1], torch.tensor([-0.5, 0.0, -0.25]))
    assert torch.allclose(d_t[1], torch.tensor([0.0, 0.0]))
    for measure in ("dist", "cov"):  # each clip of the batch is the clip on its own
        d_n, d_t = dissimilarity(current, previous, measure)
        d_n1, d_t1 = dissimilarity(current[1], previous[1], measure)
        assert torch.equal(d_n[1], d_n1) and torch.equal(d_t[1], d_t1)


def test_unknown_measure_or_normalise_is_refused():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError) as caught:
        dissimilarity(x, x, "l2")
    assert str(caught.value) == "unknown dissimilarity measure 'l2'; expected 'dist' or 'cov'"
    with pytest.raises(ValueError) as caught:
        dissimilarity_map(x, x, "dist", "sum")
    assert str(caught.value) == "unknown dissimilarity normalise 'sum'; expected 'none' or 'mean'"


def test_previous_clip_of_the_first_clip():
    clips = torch.arange(1.0, 4.0).view(1, 3, 1, 1).expand(1, 3, 2, 2)  # clip k filled with k
    assert previous_clips(clips, "zeros")[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert previous_clips(clips, "repeat")[0, :, 0, 0].tolist() == [1.0, 1.0, 2.0]


def test_full_size_forward_and_parameter_count():
    torch.manual_seed(0)
    det = build_detector("dam", (7, 1024), {}).eval()
    # two LSTMs 1024 -> 1024 (8,396,800 each), clip FC 1,025, MLP 1024-512-32-1 (541,249)
    assert sum(p.numel() for p in det.parameters()) == 17_335_874
    with torch.no_grad():
        out = det.outputs(torch.randn(2, 16, 7, 1024))
        scores = det(torch.randn(2, 16, 7, 1024))
    assert out.weighted.shape == (2, 16) and scores.shape == (2, 16)
    assert torch.allclose(out.weighted, out.detection * out.clip_attention + out.detection)  # wD
    assert float(out.weighted.min()) >= 0.0 and float(out.weighted.max()) <= 2.0


def test_forward_returns_detection_or_half_weighted_score():
    x = torch.randn(2, 5, 7, 16)
    det = _small().eval()
    with torch.no_grad():
        assert torch.allclose(det(x), det.outputs(x).detection)
    det_w = _small(score="weighted").eval()
    with torch.no_grad():
        assert torch.allclose(det_w(x), det_w.outputs(x).weighted / 2)


def test_weighted_ranking_loss_hand_computed(monkeypatch):
    det = _small()
    wd = torch.tensor([[0.2, 0.4], [0.1, 0.1], [0.5, 0.9], [1.0, 1.0]])  # 2 normal, then 2 abnormal
    monkeypatch.setattr(det, "outputs", lambda features: DamOutputs(wd, torch.zeros_like(wd), wd))
    labels = torch.tensor([0.0, 0.0, 1.0, 1.0])
    losses = det.loss(Batch(torch.zeros(4, 2, 7, 16), labels, labels.long()))
    # hinges: 1 - 0.9 + 0.4 = 0.5 and 1 - 1.0 + 0.1 = 0.1 -> mean 0.3
    # smoothness summed over abnormal videos: 0.4^2 + 0 = 0.16; sparsity: 1.4 + 2.0 = 3.4 (eq. 7)
    assert float(losses["hinge"]) == pytest.approx(0.3)
    assert float(losses["smooth"]) == pytest.approx(0.16)
    assert float(losses["sparse"]) == pytest.approx(3.4)
    assert float(losses["loss"]) == pytest.approx(0.3 + 8e-5 * (0.16 + 3.4))


def test_loss_hinge_uses_the_margin(monkeypatch):
    det = _small(margin=0.5, lambda_smooth=0.0, lambda_sparse=0.0)
    wd = torch.tensor([[0.2, 0.4], [0.1, 1.2]])  # 1 normal, then 1 abnormal
    monkeypatch.setattr(det, "outputs", lambda features: DamOutputs(wd, torch.zeros_like(wd), wd))
    labels = torch.tensor([0.0, 1.0])
    losses = det.loss(Batch(torch.zeros(2, 2, 7, 16), labels, labels.long()))
    # eq. 6: max(0, 0.5 - 1.2 + 0.4) = 0 with the margin 0.5; the default 1 would give 0.2
    assert float(losses["hinge"]) == 0.0
    wd[1] = torch.tensor([0.1, 0.7])  # 0.5 - 0.7 + 0.4 = 0.2 (margin 1 would give 0.7)
    losses = det.loss(Batch(torch.zeros(2, 2, 7, 16), labels, labels.long()))
    assert float(losses["hinge"]) == pytest.approx(0.2)
    assert float(losses["loss"]) == pytest.approx(0.2)


def test_wrong_feature_shapes_are_refused():
    with pytest.raises(ValueError) as caught:
        build_detector("dam", (1024,), {})
    assert str(caught.value) == (
        "dam needs per-clip features (t, n) with the I3D temporal axis kept, e.g. (7, 1024); "
        "got feature_shape (1024,)"
    )
    with pytest.raises(ValueError, match=r"expects \(B, T, 7, 16\)"):
        _small()(torch.zeros(1, 3, 7, 8))


@pytest.mark.parametrize(
    "params",
    [
        {"normalise": "mean"},
        {"measure": "cov"},
        {"first_clip": "repeat", "score": "weighted", "normalise": "mean"},
    ],
)
def test_streaming_scores_equal_offline_scores(params):
    det = _small(**params).eval()
    with torch.no_grad():  # make the attention branch matter, so a wrong predecessor would show
        det.dam_lstm.weight_ih_l0.mul_(20.0)
        det.clip_fc.weight.mul_(20.0)
    video = torch.randn(20, 7, 16)  # unscaled: the normalised D_nt does not saturate the LSTM
    offline = det.score_video(video)
    online = torch.tensor(list(stream_scores(det, iter(video))))
    assert torch.allclose(online, offline, atol=1e-6)
    # the stream really uses the previous clip: clip 5 scored as a first clip differs
    alone = next(stream_scores(det, [video[5]]))
    assert abs(alone - float(offline[5])) > 1e-5  # well above the 1e-6 equality tolerance


def test_one_unbatched_clip_scores_as_a_batch_of_one():
    """``clip_outputs`` / ``attention`` take one ``(t, n)`` clip as the LSTMs do (unbatched)."""
    det = _small().eval()
    clip, previous = torch.randn(7, 16), torch.randn(7, 16)
    with torch.no_grad():
        d, clip_a = det.clip_outputs(clip, previous)
        channel_a, clip_a2 = det.attention(clip, previous)
        batch_d, batch_clip_a = det.clip_outputs(clip[None], previous[None])
        batch_channel_a, _ = det.attention(clip[None], previous[None])
    assert d.shape == () and clip_a.shape == () and channel_a.shape == (8,)
    assert torch.allclose(d, batch_d[0]) and torch.allclose(clip_a, batch_clip_a[0])
    assert torch.allclose(channel_a, batch_channel_a[0]) and torch.equal(clip_a, clip_a2)
    assert float(channel_a.sum()) == pytest.approx(1.0)  # eq. 4: a softmax over the n_h units


def test_stream_reset_starts_a_new_video():
    det = _small().eval()
    with torch.no_grad():
        det.dam_lstm.weight_ih_l0.mul_(20.0)
        det.clip_fc.weight.mul_(20.0)
    first, second = torch.randn(3, 7, 16), torch.randn(2, 7, 16)
    stream = DamStream(det)
    for clip in first:
        stream.push(clip)
    carried_on = stream.push(second[0])  # scored against first[-1]
    stream.reset()
    assert stream.previous is None
    restarted = [stream.push(clip) for clip in second]
    assert restarted == list(stream_scores(det, second))  # as a fresh stream scores the video
    assert abs(carried_on - restarted[0]) > 1e-5  # without the reset the predecessor shows


def test_dam_stream_benchmark_times_a_small_detector():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "dam_stream.py"
    spec = importlib.util.spec_from_file_location("dam_stream_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # a fake clock (speed is never asserted by a test): the rate is the timed clips over the time
    # between the two clock reads, which bracket the clips after the warm-up
    pushed = []
    ticks = iter([100.0, 102.5])
    bench.time = type("Clock", (), {"perf_counter": staticmethod(lambda: next(ticks))})
    original_push = DamStream.push
    bench.DamStream = type(
        "CountingStream",
        (DamStream,),
        {"push": lambda self, clip: pushed.append(1) or original_push(self, clip)},
    )
    rate = bench.clips_per_second(
        n_clips=10, params=DamParams(hidden=8, mlp_hidden=(8,)), feature_shape=(7, 16)
    )
    assert rate == 10 / 2.5
    assert len(pushed) == 10 + bench.WARM_UP


def test_score_video_with_test_clips_max_pools_then_spreads():
    det = _small(test_clips=2).eval()
    video = torch.randn(5, 7, 16)
    scores = det.score_video(video)
    pooled = torch.stack([video[0:2].amax(0), video[2:5].amax(0)])  # linspace(0, 5, 3) -> 0, 2, 5
    with torch.no_grad():
        expected = det(pooled.unsqueeze(0))[0]
    assert torch.allclose(scores, torch.stack([expected[0]] * 2 + [expected[1]] * 3))


def _planted_dam_data(g, direction, n_videos, T=16):
    """Odd videos carry the anomaly ``direction`` added to 2-5 consecutive clips."""
    shape = tuple(direction.shape)
    feats, snippet_labels = [], []
    for i in range(n_videos):
        x, y = torch.randn(T, *shape, generator=g), torch.zeros(T)
        if i % 2:
            s = int(torch.randint(0, T - 5, (1,), generator=g))
            e = s + int(torch.randint(2, 6, (1,), generator=g))
            x[s:e] += direction
            y[s:e] = 1
        feats.append(x)
        snippet_labels.append(y)
    return torch.stack(feats), torch.stack(snippet_labels)


# bf16: the LSTMs through lstm_sequence (recurrent.lstm_last)
@pytest.mark.parametrize(
    ("measure", "precision"), [("dist", "fp32"), ("cov", "fp32"), ("dist", "bf16")]
)
def test_dam_learns_planted_anomalies(measure, precision):
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(7, 32, generator=g)
    direction = direction / direction.norm() * 10.0
    train_x, _ = _planted_dam_data(g, direction, 80)
    normal, abnormal = train_x[0::2], train_x[1::2]
    test_x, test_y = _planted_dam_data(g, direction, 40)
    torch.manual_seed(0)
    det = build_detector("dam", (7, 32), {"hidden": 32, "measure": measure})
    opt = torch.optim.Adam(det.parameters(), lr=1e-3)
    labels = torch.tensor([0.0] * 5 + [1.0] * 5)
    for _ in range(300):
        i, j = torch.randint(0, 40, (5,), generator=g), torch.randint(0, 40, (5,), generator=g)
        batch = Batch(torch.cat([normal[i], abnormal[j]]), labels, labels.long())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = det.loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    det.eval()
    scores = torch.cat([det.score_video(x) for x in test_x])
    assert roc_auc_score(test_y.flatten().numpy(), scores.numpy()) > 0.85


# ---------------------------------------------------------------------------- real I3D scale
I3D_REFERENCE = Path(__file__).resolve().parents[1] / "extract" / "data" / "i3d_reference.npz"


def _i3d_scale_clips(n_clips: int = 3) -> torch.Tensor:
    """``(n_clips, 7, 1024)`` non-negative clips with the mean and spread of a real Kinetics I3D
    feature (tests/extract/data/i3d_reference.npz: mean 0.27, max 1.76): gamma-distributed."""
    real = np.load(I3D_REFERENCE)["features"].astype(np.float64)
    mean, var = real.mean(), real.var()
    rng = np.random.default_rng(0)
    clips = rng.gamma(mean**2 / var, var / mean, size=(n_clips, 7, 1024))
    assert abs(clips.mean() / mean - 1) < 0.05 and abs(clips.std() / real.std() - 1) < 0.05
    return torch.from_numpy(clips.astype(np.float32))


def _lstm_by_hand(lstm: torch.nn.LSTM, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float64 many-to-one LSTM (gates i, f, g, o as torch orders them): ``(M, t, n)`` -> last
    hidden state ``(M, h)`` and every gate pre-activation ``(M, t, 4h)``."""
    w_ih = lstm.weight_ih_l0.detach().double().numpy()
    w_hh = lstm.weight_hh_l0.detach().double().numpy()
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().double().numpy()
    M, T, _ = x.shape
    H = w_hh.shape[1]
    h, c, pre = np.zeros((M, H)), np.zeros((M, H)), []
    sig = lambda z: 0.5 * (1.0 + np.tanh(z / 2.0))  # noqa: E731  (logistic, no overflow)
    for t in range(T):
        z = x[:, t] @ w_ih.T + h @ w_hh.T + bias  # (M, 4H)
        pre.append(z)
        i, f, g, o = (
            sig(z[:, :H]),
            sig(z[:, H : 2 * H]),
            np.tanh(z[:, 2 * H : 3 * H]),
            sig(z[:, 3 * H :]),
        )
        c = f * c + i * g
        h = o * np.tanh(c)
    return h, np.stack(pre, axis=1)


@pytest.mark.parametrize("normalise", ["none", "mean"])
def test_eqs_4_5_by_hand_at_i3d_scale(normalise):
    """Eq. 1-5 of the full-size detector (n = 1024, n_h = 1024) on clips at real I3D scale,
    recomputed in float64 numpy from the weights; and the scale problem the option fixes."""
    torch.manual_seed(0)
    det = build_detector("dam", (7, 1024), {"normalise": normalise}).eval()
    clips = _i3d_scale_clips()
    prev = previous_clips(clips[None])[0]  # clip 0 against zeros, clip k against clip k-1
    with torch.no_grad():
        channel_a, clip_a = det.attention(clips, prev)
    x, p = clips.double().numpy(), prev.double().numpy()
    diff = np.abs(x - p)  # eq. 1-2 (Dist)
    d_n, d_t = (diff.mean(1), diff.mean(2)) if normalise == "mean" else (diff.sum(1), diff.sum(2))
    d_nt = d_t[:, :, None] * d_n[:, None, :]  # eq. 3
    h, pre = _lstm_by_hand(det.dam_lstm, d_nt)
    e = np.exp(h - h.max(1, keepdims=True))
    expect_channel = e / e.sum(1, keepdims=True)  # eq. 4: softmax over the n_h channels
    fc_w = det.clip_fc.weight.detach().double().numpy()
    fc_b = det.clip_fc.bias.detach().double().numpy()
    expect_clip = 0.5 * (1.0 + np.tanh((np.tanh(h) @ fc_w.T + fc_b)[:, 0] / 2.0))  # eq. 5
    assert np.allclose(channel_a.double().numpy(), expect_channel, rtol=1e-4, atol=1e-9)
    assert np.allclose(clip_a.double().numpy(), expect_clip, rtol=0, atol=1e-5)
    saturated = float((np.abs(pre) > 5.0).mean())  # gate derivative below 0.7 % of its peak
    if normalise == "none":
        assert d_nt.mean() > 100.0  # the paper's sums: D_nt ~ 1e2 at I3D scale
        assert saturated > 0.9
    else:
        assert 0.01 < d_nt.mean() < 1.0
        assert saturated < 0.01
