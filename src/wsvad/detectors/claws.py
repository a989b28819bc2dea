"""CLAWS Net: clustering-assisted weakly supervised learning with normalcy suppression
(Zaheer, Mahmood, Astrid, Lee, ECCV 2020). No public code: this is a reference
implementation, equation by equation.

- sec. 3.1: training inputs are batches of ``b`` consecutive feature vectors of one video drawn at
  random across the dataset (the ``random_consecutive`` sampler); each inherits its video's label.
  Here one such batch is one row of ``Batch.features``, ``(B, T = b, D)``; B rows are independent.
- sec. 3.2: backbone FC module 1 (FC 512, ReLU, dropout), FC module 2 (FC 32, ReLU, dropout), FC 1
  with sigmoid.
- sec. 3.3: NSM-1 and NSM-2 are an FC of the same width as their module's FC, followed by a softmax
  over the temporal axis of the batch (each of the z columns of the ``b x z`` matrix sums to 1); the
  result multiplies the module's FC output elementwise.
- sec. 3.4, eq. 1-2: two-cluster k-means on the FC-1 x NSM-1 representation;
  ``d = ||c1 - c2||_2 / m``; ``L_c = min(alpha, d)`` for normal, ``1 / d`` for abnormal.
- sec. 3.5, eq. 3: ``L = l1 * L_pred + (1 - l1) * L_c + l2 * (L_s + L_ts)``, with ``L_pred`` the
  mean squared error against the video label, ``L_ts`` and ``L_s`` sums over the batch.
- sec. 4.3: l1 = 0.9, l2 = 8e-5, alpha = 1, b = 64, widths 512 and 32; RMSProp, lr 1e-4 divided by
  10 after 80k of 100k iterations (in configs/train/*_claws.yaml).

Choices where the paper is vague (each a ``ClawsParams`` option or stated here):

- ``cluster_mode: epoch`` (default, sec. 3.4): at the start of each epoch (``start_epoch``) every
  training video's snippets (all crops) get their representation, the 2-means runs on them, and the
  centres, cluster sizes and ``m_i`` (the video's snippet count) are kept in buffers. A distance
  fixed at the epoch start would be a constant, giving ``L_c`` no gradient; so at each step the
  rows' current representations replace themselves inside their video's epoch centres with a
  straight-through term, ``c_k + sum_{row members of k} (h - stopgrad(h)) / n_k``: the value is
  exactly the epoch's ``d_i`` and the gradient is that of ``d_i`` with respect to the row's
  members (assigned to the nearest epoch centre). Rows without ``video_index``, or any row before
  the first ``start_epoch``, fall back to ``batch`` mode.
- ``cluster_mode: batch``: the 2-means runs at every step on the row's own ``b`` representations
  (assignment without gradient, centres = means of the live representations), ``m = b``.
- Clustered representation: FC-1 output times NSM-1 (Fig. 2), before dropout. Because the NSM
  probabilities are positive, ReLU before or after the product is the same.
- ``min_distance`` floors ``d`` in ``1 / d`` (a batch whose vectors all coincide has ``d = 0``).
- ``dropout`` 0.6: not given in the paper; Sultani et al.'s rate, whose FC 512-32-1 CLAWS reuses.
- "Mean normalization" of the features (sec. 4.3, no formula given) is a train option, not part of
  the detector: ``feature_norm: mean`` (the default for claws and in its configs) maps each feature
  dimension to ``(x - mu) / (max - min)`` with the training snippets' statistics, recorded in the
  run's scoring recipe and applied to test videos too (wsvad.scoring.recipe). Features: C3D with
  ``d = 2048`` in sec. 4.3.
- ``score_video`` cuts a test video into consecutive windows of ``window`` snippets (the softmax
  needs a batch of the training length); the tail is covered by the last ``window`` snippets, which
  overlap the previous window (those snippets get the mean of both windows' scores); videos shorter
  than ``window`` are one window. ``start_epoch`` tiles videos the same way (the later window wins).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from wsvad.detectors.base import Batch, Detector, TrainVideos
from wsvad.detectors.layers import window_ranges
from wsvad.detectors.losses import sparsity, temporal_smoothness
from wsvad.detectors.registry import register_detector

log = logging.getLogger(__name__)


class ClawsParams(BaseModel):
    """CLAWS hyper-parameters: the paper's (sec. 4.3) unless the module docstring says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: tuple[int, int] = (512, 32)  # widths of FC module 1 and 2 (and of NSM-1, NSM-2)
    dropout: float = Field(0.6, ge=0.0, lt=1.0)  # after each FC module
    window: int = Field(64, ge=2)  # b: the test window; equal to the train sampler's window
    lambda_pred: float = Field(0.9, ge=0.0, le=1.0)  # lambda_1 of eq. 3
    lambda_reg: float = Field(8.0e-5, ge=0.0)  # lambda_2 of eq. 3 (smoothness + sparsity)
    alpha: float = Field(1.0, gt=0.0)  # upper bound of the normal clustering loss, eq. 2
    cluster_mode: Literal["epoch", "batch"] = "epoch"  # when and on what the 2-means runs
    kmeans_iters: int = Field(20, ge=1)  # Lloyd iterations of the 2-means
    min_distance: float = Field(1.0e-6, gt=0.0)  # floor of d inside 1 / d


def kmeans2(x: Tensor, iters: int = 20) -> Tensor:
    """Two-cluster k-means with a deterministic init; ``(M, Z) -> (M,)`` int64 labels in {0, 1}.

    Init: centre 0 is the point farthest from the mean, centre 1 the point farthest from centre 0
    (ties go to the lowest index). No gradient flows through the assignment.
    """
    x = x.detach()
    c0 = x[(x - x.mean(dim=0)).norm(dim=1).argmax()]
    c1 = x[(x - c0).norm(dim=1).argmax()]
    centres = torch.stack([c0, c1])
    assign = torch.cdist(x, centres).argmin(dim=1)
    for _ in range(iters):
        for k in (0, 1):
            members = assign == k
            if members.any():
                centres[k] = x[members].mean(dim=0)
        new = torch.cdist(x, centres).argmin(dim=1)
        if torch.equal(new, assign):
            break
        assign = new
    return assign


def cluster_distance(x: Tensor, assign: Tensor, m: int | None = None) -> Tensor:
    """Eq. 1: ``||c1 - c2||_2 / m`` for ``(M, Z)`` points and their ``(M,)`` 0/1 labels
    (differentiable in ``x``); ``m`` defaults to M. One empty cluster means the centres coincide:
    distance 0."""
    ones = assign.bool()
    if ones.all() or not ones.any():
        return x.sum() * 0.0
    return (x[~ones].mean(dim=0) - x[ones].mean(dim=0)).norm() / (m or x.shape[0])


def clustering_loss(
    distance: Tensor, label: Tensor, alpha: float = 1.0, min_distance: float = 1.0e-6
) -> Tensor:
    """Eq. 2 per batch: ``min(alpha, d)`` if normal (label 0), ``1 / d`` if abnormal.

    ``distance`` and ``label`` are ``(B,)``; returns ``(B,)``.
    """
    pull = torch.clamp(distance, max=alpha)
    push = 1.0 / torch.clamp(distance, min=min_distance)
    return torch.where(label > 0.5, push, pull)


class NormalcySuppression(nn.Module):
    """NSM (sec. 3.3): FC then softmax over the temporal axis, ``(B, b, D_in) -> (B, b, z)``."""

    def __init__(self, n_in: int, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(n_in, width)

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.fc(x), dim=1)


_EPOCH_BUFFERS = ("epoch_centres", "epoch_counts", "epoch_segments")


@register_detector("claws", params=ClawsParams)
class Claws(Detector):
    """Backbone FC 512 -> FC 32 -> FC 1 with two normalcy suppression modules, on ``(B, b, D)``."""

    sampler: ClassVar[str] = "random_consecutive"
    feature_ndim: ClassVar[int] = 1
    example_feature_shape: ClassVar[tuple[int, ...]] = (32,)
    example_params: ClassVar[dict] = {"hidden": (16, 8), "window": 16}
    # sec. 4.3: RMSProp, lr 1e-4 divided by 10 after 80k of 100k iterations, one batch of b = 64;
    # "Mean normalization is applied on the extracted features": feature_norm (scoring.recipe).
    train_defaults: ClassVar[dict] = {
        "optim": {"name": "rmsprop", "lr": 1.0e-4, "lr_milestones": [80000], "lr_gamma": 0.1},
        "sampler": {"window": 64, "windows_per_step": 1},
        "feature_norm": "mean",
        "iterations": 100000,
    }

    def __init__(
        self, feature_shape: tuple[int, ...], params: ClawsParams, n_classes: int = 1
    ) -> None:
        super().__init__()
        if len(feature_shape) != 1:
            raise ValueError(
                "claws needs one feature vector per snippet, (D,); "
                f"got feature_shape {tuple(feature_shape)}"
            )
        self.params = params
        z1, z2 = params.hidden
        self.fc1 = nn.Linear(feature_shape[0], z1)
        self.nsm1 = NormalcySuppression(feature_shape[0], z1)
        self.fc2 = nn.Linear(z1, z2)
        self.nsm2 = NormalcySuppression(z1, z2)
        self.fc3 = nn.Linear(z2, 1)
        self.dropout = nn.Dropout(params.dropout)
        # The epoch's clustering state per training video (V rows after start_epoch): buffers, so a
        # resumed run restores it; V is the training set's size, hence the resize on load.
        self.register_buffer("epoch_centres", torch.zeros(0, 2, z1))  # (V, 2, z1)
        self.register_buffer("epoch_counts", torch.zeros(0, 2))  # (V, 2) cluster sizes
        self.register_buffer("epoch_segments", torch.zeros(0))  # (V,) m_i

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        for name in _EPOCH_BUFFERS:
            if prefix + name in state_dict:
                device = getattr(self, name).device
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def representation(self, features: Tensor) -> Tensor:
        """FC-1 output times NSM-1, before dropout (clustered): ``(B, b, D) -> (B, b, z1)``."""
        return torch.relu(self.fc1(features)) * self.nsm1(features)

    def _scores(self, features: Tensor) -> tuple[Tensor, Tensor]:
        if features.dim() != 3:
            raise ValueError(f"claws expects (B, b, D) features, got {tuple(features.shape)}")
        h1 = self.representation(features)  # (B, b, z1)
        x = self.dropout(h1)
        x = self.dropout(torch.relu(self.fc2(x)) * self.nsm2(x))  # (B, b, z2)
        return torch.sigmoid(self.fc3(x)).squeeze(-1), h1  # (B, b)

    def forward(self, features: Tensor) -> Tensor:
        """``(B, b, D) -> (B, b)`` scores in [0, 1]; the NSM softmax runs over each row's b."""
        return self._scores(features)[0]

    @torch.no_grad()
    def start_epoch(self, videos: TrainVideos) -> None:
        """Sec. 3.4: 2-means on every training video's representations; keeps centres and sizes."""
        if self.params.cluster_mode != "epoch":
            return
        z1 = self.params.hidden[0]
        device = self.fc1.weight.device
        centres = torch.zeros(len(videos), 2, z1, device=device)
        counts = torch.zeros(len(videos), 2, device=device)
        segments = torch.zeros(len(videos), device=device)
        for v in range(len(videos)):
            crops = torch.as_tensor(videos[v], dtype=torch.float32, device=device)  # (K, N, D)
            reps = torch.cat([self._tiled_representation(crop) for crop in crops])  # (K * N, z1)
            assign = kmeans2(reps, self.params.kmeans_iters)
            for k in (0, 1):
                members = reps[assign == k]
                counts[v, k] = members.shape[0]
                if members.shape[0]:
                    centres[v, k] = members.mean(dim=0)
            segments[v] = crops.shape[1]
        self.epoch_centres, self.epoch_counts, self.epoch_segments = centres, counts, segments
        log.debug(
            "claws: clustered %d videos, mean d %.3g", len(videos), float(self._epoch_d().mean())
        )

    def _epoch_d(self) -> Tensor:
        d = (self.epoch_centres[:, 0] - self.epoch_centres[:, 1]).norm(dim=-1) / self.epoch_segments
        return torch.where((self.epoch_counts > 0).all(dim=1), d, torch.zeros_like(d))

    def _tiled_representation(self, features: Tensor) -> Tensor:
        """``(N, D) -> (N, z1)`` over consecutive windows of ``window`` (the later window wins)."""
        out = features.new_zeros(features.shape[0], self.params.hidden[0])
        for start, end in window_ranges(features.shape[0], self.params.window):
            out[start:end] = self.representation(features[start:end].unsqueeze(0))[0]
        return out

    def _row_distance(self, h: Tensor, video: int | None) -> Tensor:
        """Clustering distance for one row's ``(b, z1)`` representations (epoch or batch mode)."""
        if video is None or self.params.cluster_mode == "batch" or self.epoch_centres.shape[0] == 0:
            return cluster_distance(h, kmeans2(h, self.params.kmeans_iters))
        if not 0 <= video < self.epoch_centres.shape[0]:
            raise ValueError(
                f"claws: video_index {video} outside the {self.epoch_centres.shape[0]} videos "
                "clustered by start_epoch"
            )
        centres, counts = self.epoch_centres[video], self.epoch_counts[video]
        if bool((counts == 0).any()):
            return h.sum() * 0.0
        member = torch.cdist(h.detach(), centres).argmin(dim=1)  # (b,)
        live = h - h.detach()  # zero-valued; carries the gradient of the row's members
        shift = torch.stack([live[member == k].sum(dim=0) / counts[k] for k in (0, 1)])
        moved = centres + shift
        return (moved[0] - moved[1]).norm() / self.epoch_segments[video]

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Eq. 3, averaged over the B independent batches (rows) of the step."""
        p = self.params
        scores, h1 = self._scores(batch.features)
        labels = batch.labels.to(scores.dtype)
        pred = ((scores - labels.unsqueeze(1)) ** 2).mean()
        videos = (
            [None] * len(h1) if batch.video_index is None else [int(v) for v in batch.video_index]
        )
        distances = torch.stack(
            [self._row_distance(h, v) for h, v in zip(h1, videos, strict=True)]
        )  # (B,)
        cluster = clustering_loss(distances, labels, p.alpha, p.min_distance).mean()
        smooth, sparse = temporal_smoothness(scores), sparsity(scores)
        total = (
            p.lambda_pred * pred
            + (1.0 - p.lambda_pred) * cluster
            + p.lambda_reg * (sparse + smooth)
        )
        return {
            "loss": total,
            "pred": pred.detach(),
            "cluster": cluster.detach(),
            "distance": distances.detach().mean(),
            "smooth": smooth.detach(),
            "sparse": sparse.detach(),
        }

    @torch.no_grad()
    def score_video(self, features: Tensor) -> Tensor:
        """``(N, D) -> (N,)``: consecutive windows of ``window`` snippets (see module docstring)."""
        ranges = window_ranges(features.shape[0], self.params.window)
        if len(ranges) == 1:
            return self.forward(features.unsqueeze(0)).squeeze(0)
        windows = torch.stack(
            [features[s:e] for s, e in ranges]
        )  # (W, b, D): all windows are b long
        window_scores = self.forward(windows)  # (W, b)
        # snippets in the overlapping tail get the mean of the two windows' scores
        n = features.shape[0]
        total = features.new_zeros(n)
        count = features.new_zeros(n)
        for (s, e), row in zip(ranges, window_scores, strict=True):
            total[s:e] += row
            count[s:e] += 1
        return total / count
