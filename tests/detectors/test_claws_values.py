"""CLAWS (Zaheer et al., ECCV 2020) by value: Lloyd steps of the 2-means worked by hand, eq. 2's
defaults, the Fig. 2 forward on hand-set weights, the per-epoch clustering state (empty clusters,
video indices, the batch-mode fallback) and eq. 3 with non-default alpha and min_distance."""

import math
import warnings

import pytest
import torch
from torch import nn

from wsvad.detectors import Batch, build_detector
from wsvad.detectors.claws import cluster_distance, clustering_loss, kmeans2

# Six points whose 2-means takes two Lloyd steps from its deterministic init (worked out below).
LLOYD = torch.tensor([[-1.0, 1.0], [5.0, -3.0], [-2.0, -3.0], [4.0, -3.0], [2.0, 3.0], [3.0, -1.0]])
# Final centres (5/2, -5/2) and (1/2, 2): ||(2, -4.5)|| = sqrt(24.25), over m = 6 points (eq. 1).
LLOYD_D = math.sqrt(24.25) / 6
# After one Lloyd step the centres are (7/3, -3) and (4/3, 1): ||(1, -4)|| = sqrt(17).
LLOYD_D_ONE_STEP = math.sqrt(17.0) / 6


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
