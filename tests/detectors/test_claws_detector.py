"""CLAWS (Zaheer et al., ECCV 2020): 2-means, clustering distance loss, normalcy suppression, eq. 3,
per-epoch clustering state, test windows, learning from random consecutive windows; and by value:
Lloyd steps of the 2-means worked by hand, eq. 2's defaults, the Fig. 2 forward on hand-set weights,
the per-epoch clustering state (empty clusters, video indices, the batch-mode fallback) and eq. 3
with non-default alpha and min_distance."""

import math
import warnings

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from wsvad.detectors import Batch, build_detector
from wsvad.detectors.claws import NormalcySuppression, cluster_distance, clustering_loss, kmeans2

TWO_CLUSTERS = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 1.0], [10.0, 1.0]])
# Six points whose 2-means takes two Lloyd steps from its deterministic init (worked out below).
LLOYD = torch.tensor([[-1.0, 1.0], [5.0, -3.0], [-2.0, -3.0], [4.0, -3.0], [2.0, 3.0], [3.0, -1.0]])
# Final centres (5/2, -5/2) and (1/2, 2): ||(2, -4.5)|| = sqrt(24.25), over m = 6 points (eq. 1).
LLOYD_D = math.sqrt(24.25) / 6
# After one Lloyd step the centres are (7/3, -3) and (4/3, 1): ||(1, -4)|| = sqrt(17).
LLOYD_D_ONE_STEP = math.sqrt(17.0) / 6


class _Videos:
    """The TrainVideos protocol over in-memory ``(N, D)`` videos (one crop)."""

    def __init__(self, videos, labels):
        self.videos, self.labels = videos, torch.tensor(labels, dtype=torch.float32)

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, index):
        return self.videos[index].unsqueeze(0)  # (K=1, N, D)


def _small(**params):
    torch.manual_seed(0)
    return build_detector("claws", (6,), {"hidden": (8, 4), "window": 4, **params})


def test_kmeans_finds_two_known_clusters_and_their_distance():
    assign = kmeans2(TWO_CLUSTERS)
    assert assign[0] == assign[2] and assign[1] == assign[3] and assign[0] != assign[1]
    # centres (0, 0.5) and (10, 0.5): ||c1 - c2|| = 10, divided by m = 4 points (eq. 1)
    assert float(cluster_distance(TWO_CLUSTERS, assign)) == pytest.approx(2.5)
    assert float(cluster_distance(TWO_CLUSTERS, assign, m=10)) == pytest.approx(1.0)


def test_kmeans_is_deterministic_and_handles_identical_points():
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(kmeans2(x), kmeans2(x.clone()))
    same = torch.ones(5, 3)
    assert float(cluster_distance(same, kmeans2(same))) == 0.0  # one cluster: centres coincide


def test_clustering_loss_pulls_normal_and_pushes_abnormal():
    d = torch.tensor([0.3, 2.5, 0.5, 0.0])
    label = torch.tensor([0.0, 0.0, 1.0, 1.0])
    # normal: min(alpha = 1, d); abnormal: 1 / d, with d floored at min_distance
    assert clustering_loss(d, label, alpha=1.0, min_distance=1e-3).tolist() == pytest.approx(
        [0.3, 1.0, 2.0, 1000.0]
    )


def test_distance_gradient_pulls_centres_apart():
    x = TWO_CLUSTERS.clone().requires_grad_(True)
    (1.0 / cluster_distance(x, kmeans2(x))).backward()
    # minimising 1/d moves the left cluster left and the right cluster right
    assert float(x.grad[0, 0]) > 0 and float(x.grad[1, 0]) < 0


def test_normalcy_suppression_is_a_softmax_over_time():
    nsm = NormalcySuppression(6, 3)
    p = nsm(torch.randn(2, 5, 6))
    assert p.shape == (2, 5, 3)
    assert torch.allclose(p.sum(dim=1), torch.ones(2, 3))  # each of the z columns sums to 1 over b


def test_overall_loss_hand_computed(monkeypatch):
    det = _small(cluster_mode="batch")
    scores = torch.tensor([[0.2, 0.4, 0.6, 0.8]])
    monkeypatch.setattr(det, "_scores", lambda features: (scores, TWO_CLUSTERS.unsqueeze(0)))
    losses = det.loss(Batch(torch.zeros(1, 4, 6), torch.tensor([1.0]), torch.tensor([1])))
    # L_pred = mean((1 - s)^2) = 0.3; L_c = 1 / 2.5 = 0.4; L_ts = 3 * 0.2^2 = 0.12; L_s = 2.0
    assert float(losses["pred"]) == pytest.approx(0.3)
    assert float(losses["cluster"]) == pytest.approx(0.4)
    assert float(losses["smooth"]) == pytest.approx(0.12)
    assert float(losses["sparse"]) == pytest.approx(2.0)
    assert float(losses["loss"]) == pytest.approx(0.9 * 0.3 + 0.1 * 0.4 + 8e-5 * (2.0 + 0.12))


def test_epoch_clustering_value_and_gradient_match_the_direct_distance():
    det = _small().eval()  # eval: no dropout, so both paths see the same representation
    g = torch.Generator().manual_seed(1)
    videos = [
        torch.randn(4, 6, generator=g),
        torch.randn(4, 6, generator=g) + 2.0,
        torch.randn(7, 6, generator=g),
    ]
    det.start_epoch(_Videos(videos, [0, 1, 1]))
    assert det.epoch_centres.shape == (3, 2, 8) and det.epoch_segments.tolist() == [4.0, 4.0, 7.0]
    # a row covering all of video 1: the live distance equals the epoch's d_1 ...
    h = det.representation(videos[1].unsqueeze(0))[0]
    live = det._row_distance(h, 1)
    assert float(live.detach()) == pytest.approx(float(det._epoch_d()[1]), rel=1e-5)
    # ... and its gradient is that of eq. 1 on the same clusters
    (grad_live,) = torch.autograd.grad(live, det.fc1.weight)
    h2 = det.representation(videos[1].unsqueeze(0))[0]
    direct = cluster_distance(h2, kmeans2(h2), m=4)
    (grad_direct,) = torch.autograd.grad(direct, det.fc1.weight)
    assert float(grad_live.abs().sum()) > 0
    assert torch.allclose(grad_live, grad_direct, atol=1e-6)
    with pytest.raises(ValueError, match="video_index 5 outside the 3 videos"):
        det._row_distance(h, 5)


def test_epoch_state_survives_a_state_dict_round_trip():
    det = _small()
    det.start_epoch(_Videos([torch.randn(5, 6), torch.randn(9, 6)], [0, 1]))
    fresh = _small()
    fresh.load_state_dict(det.state_dict())
    assert torch.equal(fresh.epoch_centres, det.epoch_centres)
    assert torch.equal(fresh.epoch_counts, det.epoch_counts)
    assert fresh.epoch_segments.tolist() == [5.0, 9.0]


def test_score_video_windows_and_overlapping_tail():
    det = _small().eval()
    video = torch.randn(10, 6)  # windows of 4: [0, 4), [4, 8), and the tail [6, 10)
    scores = det.score_video(video)
    with torch.no_grad():
        w = [det(video[s : s + 4].unsqueeze(0))[0] for s in (0, 4, 6)]
    assert torch.allclose(scores[0:4], w[0])
    assert torch.allclose(scores[4:6], w[1][:2])
    assert torch.allclose(scores[6:8], (w[1][2:] + w[2][:2]) / 2)
    assert torch.allclose(scores[8:10], w[2][2:])


def test_parameter_count_and_feature_shape_check():
    torch.manual_seed(0)
    det = build_detector("claws", (4096,), {})  # C3D fc6 features, as in the paper
    # FC1 + NSM-1: 2 x (4096*512 + 512); FC2 + NSM-2: 2 x (512*32 + 32); FC3: 33
    assert sum(p.numel() for p in det.parameters()) == 4_228_193
    with pytest.raises(
        ValueError, match=r"claws needs one feature vector per snippet.*\(7, 1024\)"
    ):
        build_detector("claws", (7, 1024), {})


def test_claws_learns_planted_anomalies_from_random_windows():
    g = torch.Generator().manual_seed(0)
    D, L, b = 32, 48, 16
    direction = torch.randn(D, generator=g)
    direction = direction / direction.norm() * 3.0

    def video(abnormal):
        x, y = torch.randn(L, D, generator=g), torch.zeros(L)
        if abnormal:
            s = int(torch.randint(0, L - 20, (1,), generator=g))
            e = s + int(torch.randint(12, 20, (1,), generator=g))
            x[s:e] += direction
            y[s:e] = 1
        return x, y

    train = [video(i % 2 == 1)[0] for i in range(40)]
    videos = _Videos(train, [i % 2 for i in range(40)])
    test = [video(i % 2 == 1) for i in range(20)]
    torch.manual_seed(0)
    det = build_detector("claws", (D,), {"window": b})  # paper sizes 512 / 32
    opt = torch.optim.RMSprop(det.parameters(), lr=1e-3)
    for step in range(300):
        if step % 30 == 0:  # an "epoch" of the random batch selector
            det.start_epoch(videos)
        rows = torch.randint(0, 40, (8,), generator=g)
        starts = torch.randint(0, L - b + 1, (8,), generator=g)
        feats = torch.stack(
            [train[r][s : s + b] for r, s in zip(rows.tolist(), starts.tolist(), strict=True)]
        )
        labels = videos.labels[rows]
        loss = det.loss(Batch(feats, labels, labels.long(), rows, starts))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    det.eval()
    scores = torch.cat([det.score_video(x) for x, _ in test])
    truth = torch.cat([y for _, y in test])
    assert roc_auc_score(truth.numpy(), scores.numpy()) > 0.85


def _three_videos():
    """Video 0: one snippet (its second cluster stays empty); videos 1, 2: random."""
    g = torch.Generator().manual_seed(3)
    return [
        torch.full((1, 6), 0.5),
        torch.randn(4, 6, generator=g),
        torch.randn(7, 6, generator=g) + 1.0,
    ]


def _clustered(**params):
    det = _small(**params)
    det.start_epoch(_Videos(_three_videos(), [0, 1, 1]))
    return det


def test_kmeans_init_and_lloyd_steps_by_hand():
    # mean (11/6, -1): the farthest point is (-2, -3) = centre 0; the farthest from it is (2, 3).
    # Nearest of those two: (-1, 1) 17 vs 13, (5, -3) 49 vs 45, (4, -3) 36 vs 40, (3, -1) 29 vs 17.
    assert kmeans2(LLOYD, iters=0).tolist() == [1, 1, 0, 0, 1, 1]
    # centres (1, -3), (9/4, 0): (5, -3) is 16 from centre 0, 265/16 from centre 1
    assert kmeans2(LLOYD, iters=1).tolist() == [1, 0, 0, 0, 1, 1]
    # centres (7/3, -3), (4/3, 1): (3, -1) is 40/9 from centre 0, 61/9 from centre 1; then stable
    assert kmeans2(LLOYD, iters=2).tolist() == [1, 0, 0, 0, 1, 0]
    assert kmeans2(LLOYD).tolist() == [1, 0, 0, 0, 1, 0]
    assert kmeans2(LLOYD, iters=50).tolist() == [1, 0, 0, 0, 1, 0]
    assert float(cluster_distance(LLOYD, kmeans2(LLOYD))) == pytest.approx(LLOYD_D)


def test_kmeans_stops_after_20_lloyd_iterations_by_default():
    # 10 points at 0, 5 at 10 and 60 evenly spaced on [3, 6]: the boundary creeps over the
    # chain a few points per step and Lloyd needs more than 21 steps to settle.
    x = torch.cat([torch.zeros(10), torch.full((5,), 10.0), torch.linspace(3.0, 6.0, 60)])
    x = x.unsqueeze(1)
    at_20, at_21 = kmeans2(x, iters=20), kmeans2(x, iters=21)
    assert not torch.equal(at_20, at_21)  # still moving: the iteration cap decides the result
    assert torch.equal(kmeans2(x), at_20)


def test_clustering_loss_defaults_are_alpha_1_and_a_tiny_floor():
    d = torch.tensor([1.5, 0.5, 0.0, 0.25])
    label = torch.tensor([0.0, 1.0, 1.0, 0.5])
    # normal: min(1, d); abnormal (label > 0.5): 1 / max(d, 1e-6); a label of 0.5 is not abnormal
    assert clustering_loss(d, label).tolist() == pytest.approx([1.0, 2.0, 1.0e6, 0.25])


def test_forward_is_fig2_on_hand_set_weights():
    torch.manual_seed(0)
    det = build_detector("claws", (1,), {"hidden": (1, 1), "window": 2}).eval()

    def set_fc(fc: nn.Linear, w: float, b: float) -> None:
        nn.init.constant_(fc.weight, w)
        nn.init.constant_(fc.bias, b)

    set_fc(det.fc1, 4.0, 0.0)
    set_fc(det.nsm1.fc, math.log(3.0), 0.0)
    set_fc(det.fc2, 1.0, -1.0)
    set_fc(det.nsm2.fc, 0.0, 0.0)
    set_fc(det.fc3, 1.0, -2.5)
    x = torch.tensor([[[1.0], [2.0]]])  # one row, b = 2 snippets, D = 1
    # NSM-1: softmax over time of (ln 3, 2 ln 3) = (1/4, 3/4); FC-1: relu(4, 8); h1 = (1, 6)
    assert det.representation(x).flatten().tolist() == pytest.approx([1.0, 6.0])
    # FC-2: relu(0, 5) times NSM-2's uniform (1/2, 1/2) = (0, 2.5); FC-3: (-2.5, 0); sigmoid
    expected = [1.0 / (1.0 + math.exp(2.5)), 0.5]
    with torch.no_grad():
        assert det(x).flatten().tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"claws expects \(B, b, D\) features, got \(2, 1\)"):
        det(x[0])


def test_empty_epoch_cluster_gives_distance_zero_only_for_its_video():
    det = _clustered()
    assert det.epoch_counts.tolist()[0] == [1.0, 0.0]  # one snippet: one cluster
    assert all(c > 0 for c in det.epoch_counts[1:].flatten().tolist())
    expected = [
        float((det.epoch_centres[v, 0] - det.epoch_centres[v, 1]).norm() / m)
        for v, m in ((1, 4), (2, 7))
    ]
    assert det._epoch_d().tolist() == pytest.approx([0.0, *expected])
    assert min(expected) > 0
    h = det.representation(torch.randn(1, 4, 6))[0]
    zero = det._row_distance(h, 0)
    assert float(zero.detach()) == 0.0
    (grad,) = torch.autograd.grad(zero, det.fc1.weight)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_row_distance_is_the_epoch_d_of_every_valid_video_index():
    det = _clustered()
    h = det.representation(torch.randn(1, 4, 6, generator=torch.Generator().manual_seed(5)))[0]
    d = det._epoch_d()
    for v in (1, 2):  # the value is the epoch's d_v whatever the row (the live term is zero)
        assert float(det._row_distance(h, v).detach()) == pytest.approx(float(d[v]), rel=1e-6)
    for v in (3, -1):
        with pytest.raises(
            ValueError,
            match=rf"^claws: video_index {v} outside the 3 videos clustered by start_epoch$",
        ):
            det._row_distance(h, v)


def test_rows_without_video_index_or_in_batch_mode_cluster_their_own_window():
    det = _clustered()
    assert float(det._row_distance(LLOYD, None)) == pytest.approx(LLOYD_D)
    # a batch-mode model that loaded a checkpoint with epoch state still clusters each row
    batch_mode = _small(cluster_mode="batch")
    batch_mode.load_state_dict(det.state_dict())
    assert batch_mode.epoch_centres.shape == (3, 2, 8)
    assert float(batch_mode._row_distance(LLOYD, 1)) == pytest.approx(LLOYD_D)
    # kmeans_iters caps the Lloyd steps of that 2-means
    one_step = _small(cluster_mode="batch", kmeans_iters=1)
    assert float(one_step._row_distance(LLOYD, None)) == pytest.approx(LLOYD_D_ONE_STEP)


def test_loss_hand_computed_with_alpha_min_distance_and_float64_labels(monkeypatch):
    det = _small(cluster_mode="batch", alpha=0.2, min_distance=0.5)
    scores = torch.full((2, 4), 0.5)
    # row 0: d = 2.5 / 10 = 0.25 (normal, clamped to alpha); row 1: identical points, d = 0
    two = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.1], [1.0, 0.1]])
    assert float(cluster_distance(two, kmeans2(two))) == pytest.approx(0.25)
    h1 = torch.stack([two, torch.ones(4, 2)])
    monkeypatch.setattr(det, "_scores", lambda features: (scores, h1))
    labels = torch.tensor([0.0, 1.0], dtype=torch.float64)
    losses = det.loss(Batch(torch.zeros(2, 4, 6), labels, labels.long()))
    # L_pred = 0.25; L_c = (min(0.2, 0.25) + 1 / max(0, 0.5)) / 2 = 1.1; L_s = 2, L_ts = 0
    assert float(losses["pred"]) == pytest.approx(0.25)
    assert float(losses["cluster"]) == pytest.approx(1.1)
    assert float(losses["distance"]) == pytest.approx(0.125)
    assert float(losses["sparse"]) == pytest.approx(2.0) and float(losses["smooth"]) == 0.0
    assert float(losses["loss"].detach()) == pytest.approx(0.9 * 0.25 + 0.1 * 1.1 + 8e-5 * 2.0)
    assert losses["loss"].dtype == torch.float32  # the labels take the scores' dtype


def test_loss_looks_up_each_rows_epoch_distance_by_video_index():
    det = _clustered()
    videos = _three_videos()
    feats = torch.stack([videos[1], videos[2][3:7]])  # (2, b = 4, 6)
    labels = torch.tensor([1.0, 1.0])
    losses = det.loss(Batch(feats, labels, labels.long(), torch.tensor([1, 2])))
    d1, d2 = det._epoch_d()[1:].tolist()
    assert float(losses["distance"]) == pytest.approx((d1 + d2) / 2, rel=1e-6)
    assert float(losses["cluster"]) == pytest.approx((1 / d1 + 1 / d2) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="zip"):  # one video index for two rows
        det.loss(Batch(feats, labels, labels.long(), torch.tensor([1])))


def test_epoch_buffers_take_the_models_device_on_load():
    """The buffers are resized on the model's device, not the checkpoint's (a CPU checkpoint into
    a GPU model); the meta device stands in for the second device on this CPU-only machine."""
    state = _clustered().state_dict()
    on_meta = _small().to("meta")
    with warnings.catch_warnings():  # torch warns that copying into meta tensors is a no-op
        warnings.simplefilter("ignore", UserWarning)
        on_meta.load_state_dict(state)
    for name in ("epoch_centres", "epoch_counts", "epoch_segments"):
        buffer = getattr(on_meta, name)
        assert buffer.device.type == "meta" and buffer.shape == state[name].shape


def test_load_hook_forwards_torchs_arguments_given_by_keyword():
    state = _clustered().state_dict()
    fresh = _small()
    missing, unexpected, errors = [], [], []
    fresh._load_from_state_dict(
        state,
        prefix="",
        local_metadata={},
        strict=True,
        missing_keys=missing,
        unexpected_keys=unexpected,
        error_msgs=errors,
    )
    assert (missing, unexpected, errors) == ([], [], [])
    assert torch.equal(fresh.epoch_counts, state["epoch_counts"])
    assert fresh.epoch_segments.tolist() == [1.0, 4.0, 7.0]


def test_state_before_the_first_epoch_is_empty_and_feature_shape_is_checked():
    # what a checkpoint saved before start_epoch holds: no video, two clusters of z1 = 8
    state = _small().state_dict()
    assert state["epoch_centres"].shape == (0, 2, 8)
    assert state["epoch_counts"].shape == (0, 2)
    assert state["epoch_segments"].shape == (0,)
    message = r"^claws needs one feature vector per snippet, \(D,\); got feature_shape \(7, 1024\)$"
    with pytest.raises(ValueError, match=message):
        build_detector("claws", (7, 1024), {})
