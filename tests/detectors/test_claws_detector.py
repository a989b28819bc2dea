"""CLAWS (Zaheer et al., ECCV 2020): 2-means, clustering distance loss, normalcy suppression, eq. 3,
per-epoch clustering state, test windows, learning from random consecutive windows."""

import pytest
import torch
from sklearn.metrics import roc_auc_score

from wsvad.detectors import Batch, build_detector
from wsvad.detectors.claws import NormalcySuppression, cluster_distance, clustering_loss, kmeans2

TWO_CLUSTERS = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 1.0], [10.0, 1.0]])


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


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
