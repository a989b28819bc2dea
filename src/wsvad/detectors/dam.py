"""DAM: Dissimilarity Attention Module (Majhi, Das, Bremond, AVSS 2021).

Each video is ``C = 16`` clips; a clip is an I3D map with its temporal axis kept,
``(t, n) = (7, 1024)`` (max over the 64-frame snippets of the clip, done by the bag rule before the
detector). Per clip:

- sec. 3.3 "LSTM": a many-to-one LSTM with ``n_h`` units over the ``t`` rows gives ``F'`` (its last
  hidden state, already tanh-squashed by the LSTM's output gate).
- eq. 1-2: dissimilarity between the clip and the previous clip, across channels ``D_n`` (n,) and
  across time ``D_t`` (t,), either Manhattan (Dist-DAM) or cross-covariance diagonals (Cov-DAM).
- eq. 3: ``D_nt = Inflate(D_n) * Inflate(D_t)``, a ``(t, n)`` map.
- eq. 4-5: a second many-to-one LSTM over ``D_nt``; ``Channel_A = softmax(LSTM)``,
  ``Clip_A = sigmoid(FC(tanh(LSTM)))``.
- sec. 3.3 end: ``F* = F' + Channel_A * F'``; sec. 3.4: an MLP with sigmoid output gives ``D``.
- sec. 3.4: ``wD = D * Clip_A + D`` (in [0, 2]) enters the ranking loss, eq. 7, with smoothness and
  sparsity on the abnormal bag (lambda_1 = lambda_2 = 8e-5, sec. 4.1).

Choices where the paper is silent or vague (most are ``DamParams`` options):

- ``first_clip``: the first clip has no predecessor; the authors' public code compares it with an
  all-zeros clip ("zeros", default); "repeat" compares it with itself (zero dissimilarity).
- Cov-DAM: eq. 1-2 write an unnormalised product; we divide by the number of summed samples
  (``t`` for ``D_n``, ``n`` for ``D_t``), i.e. a true covariance. This only rescales ``D_nt``.
- Dist-DAM: the paper (eq. 1-2) writes plain sums of absolute differences, ``D_n`` over the ``t =
  7`` rows and ``D_t`` over the ``n = 1024`` channels, and says nothing about their scale; the
  default ``normalise: none`` keeps them as written. At real I3D scale (non-negative features, mean
  ~0.27, as the Kinetics I3D gives on tests/extract/data/i3d_reference.npz) that makes ``D_nt``
  ~1e2-1e3: at initialisation nearly every gate of the attention LSTM is saturated and ``Channel_A``
  is almost exactly uniform (1/n), so the attention starts with no gradient to learn from
  (tests/detectors/test_dam_detector.py::test_eqs_4_5_by_hand_at_i3d_scale, full-size detector, seed
  0: mean ``D_nt`` 467, 98.7 % of the gate pre-activations beyond +-5, ``Channel_A`` max 2.4e-3
  against the uniform 9.8e-4). ``normalise: mean`` divides each sum by its number of terms (mean
  absolute difference: ``D_n / t``, ``D_t / n``), the same normalisation Cov-DAM gets above: mean
  ``D_nt`` 0.065 and no saturated gate. (Eq. 4 is a softmax over n_h = 1024 LSTM outputs in (-1, 1),
  so ``Channel_A`` starts close to uniform either way; what the option changes is that its gates can
  learn.) It is an option, not the default, because the paper does not do it.
- ``mlp_hidden``: the ablation (Table 1, l1) calls the scorer a "3-layer MLP" and matches Sultani et
  al.'s I3D result, so the default is Sultani's 512 -> 32 -> 1; ``dropout`` 0.2 (before each hidden
  layer) is the authors' public code. Their code uses one hidden layer: ``mlp_hidden: [n]``.
- ``score``: the value returned by ``forward`` and ``score_video``. ``wD`` is a training-time device
  (eq. 7); the authors' evaluation code reads the MLP's detection layer, so the default "detection"
  returns ``D``; "weighted" returns ``wD / 2`` (``wD`` mapped into [0, 1]).
- The authors' public code differs from the paper in places; the paper wins here: it uses 32 clips
  (paper: C = 16), one hidden MLP layer of 96 units, and Keras L2 penalties the paper never mentions
  (add them through the optimiser's ``weight_decay`` if wanted).
- eq. 7 sums smoothness and sparsity over ``N = T x batchsize``: we sum per-video terms over the
  abnormal videos of the batch; the hinge is the mean over the normal/abnormal pairs.
- ``score_video`` scores every input row as one clip against the row before it (online mode), so
  the streaming scorer (``DamStream``) gives the same numbers. ``test_clips: 16`` instead max-pools
  the test video into 16 clips (RTFM linspace rule) like the authors' evaluation and gives each
  snippet its clip's score.

Parameters as built (defaults, feature (7, 1024)): 17,335,874; with wsvad's time-keeping I3D
(12,279,984) that is 29.6M, the paper's "29M" (Table 3, which counts the backbone).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar, Literal, NamedTuple

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from wsvad.detectors.base import Batch, Detector
from wsvad.detectors.layers import linspace_ranges, pool_ranges, spread_range_scores
from wsvad.detectors.losses import (
    balanced_half,
    mil_ranking_hinge,
    sparsity,
    temporal_smoothness,
)
from wsvad.detectors.recurrent import lstm_last
from wsvad.detectors.registry import register_detector


class DamParams(BaseModel):
    """DAM hyper-parameters: the paper's (sec. 4.1) or documented in the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    measure: Literal["dist", "cov"] = "dist"  # Dist-DAM (Manhattan) or Cov-DAM (cross-covariance)
    hidden: int = Field(1024, ge=1)  # n_h, units of both LSTMs (sec. 4.1)
    mlp_hidden: tuple[int, ...] = (512, 32)  # hidden layers of the scoring MLP
    dropout: float = Field(0.2, ge=0.0, lt=1.0)  # before each hidden MLP layer
    lambda_smooth: float = Field(8.0e-5, ge=0.0)  # lambda_1 of eq. 7
    lambda_sparse: float = Field(8.0e-5, ge=0.0)  # lambda_2 of eq. 7
    margin: float = Field(1.0, gt=0.0)  # hinge margin of eq. 6-7
    first_clip: Literal["zeros", "repeat"] = "zeros"  # predecessor of the first clip
    score: Literal["detection", "weighted"] = "detection"  # forward(): D or wD / 2
    test_clips: int = Field(0, ge=0)  # score_video: 0 = every row is a clip (online); k = pool to k
    # Dist-DAM eq. 1-2: none = the paper's sums; mean = divided by the number of terms (docstring)
    normalise: Literal["none", "mean"] = "none"


class DamOutputs(NamedTuple):
    """Per-clip outputs, each ``(B, T)``: ``detection`` D, ``clip_attention`` Clip_A, ``weighted``
    wD."""

    detection: Tensor
    clip_attention: Tensor
    weighted: Tensor


def previous_clips(clips: Tensor, first_clip: str = "zeros") -> Tensor:
    """Each clip's predecessor along the clip axis: ``(B, T, t, n) -> (B, T, t, n)``."""
    first = torch.zeros_like(clips[:, :1]) if first_clip == "zeros" else clips[:, :1]
    return torch.cat([first, clips[:, :-1]], dim=1)


def dissimilarity(
    current: Tensor, previous: Tensor, measure: str, normalise: str = "none"
) -> tuple[Tensor, Tensor]:
    """Eq. 1-2: ``D_n`` across channels and ``D_t`` across time between two clips.

    Args:
        current: ``(..., t, n)`` clip ``C_i``.
        previous: ``(..., t, n)`` clip ``C_{i-1}``.
        measure: "dist" (sum of absolute differences) or "cov" (diagonal of the cross-covariance).
        normalise: "dist" only: "none" keeps the sums of eq. 1-2, "mean" divides them by the
            number of terms (``t`` for ``D_n``, ``n`` for ``D_t``); "cov" is always a mean.

    Returns:
        ``D_n`` of shape ``(..., n)`` and ``D_t`` of shape ``(..., t)``.
    """
    if normalise not in ("none", "mean"):
        raise ValueError(
            f"unknown dissimilarity normalise {normalise!r}; expected 'none' or 'mean'"
        )
    if measure == "dist":
        diff = (current - previous).abs()  # (..., t, n)
        if normalise == "mean":
            return diff.mean(dim=-2), diff.mean(dim=-1)
        return diff.sum(dim=-2), diff.sum(dim=-1)
    if measure == "cov":
        # D_n[k]: covariance over the t rows of channel k; D_t[j]: over the n channels of row j.
        # Centring one side is enough: mean((c - mean c)(p - mean p)) = mean((c - mean c) p).
        c_t = current - current.mean(dim=-2, keepdim=True)
        c_n = current - current.mean(dim=-1, keepdim=True)
        return (c_t * previous).mean(dim=-2), (c_n * previous).mean(dim=-1)
    raise ValueError(f"unknown dissimilarity measure {measure!r}; expected 'dist' or 'cov'")


def dissimilarity_map(
    current: Tensor, previous: Tensor, measure: str, normalise: str = "none"
) -> Tensor:
    """Eq. 3: ``D_nt = Inflate(D_n) * Inflate(D_t)``, ``(..., t, n)``."""
    d_n, d_t = dissimilarity(current, previous, measure, normalise)
    return d_t.unsqueeze(-1) * d_n.unsqueeze(-2)  # (..., t, 1) * (..., 1, n) -> (..., t, n)


def _mlp(n_in: int, hidden: tuple[int, ...], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(n_in, width), nn.ReLU()]
        n_in = width
    layers += [nn.Linear(n_in, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


@register_detector("dam", params=DamParams)
class Dam(Detector):
    """LSTM + Dissimilarity Attention Module + MLP over ``(B, T, t, n)`` clip maps."""

    sampler: ClassVar[str] = "balanced"
    feature_ndim: ClassVar[int] = 2
    example_feature_shape: ClassVar[tuple[int, ...]] = (7, 16)
    example_params: ClassVar[dict] = {"hidden": 16, "mlp_hidden": (8,)}
    # sec. 4.1: Adam, lr 1e-4, 10 normal + 10 abnormal videos per step (no iteration count given);
    # C = 16 clips per video (sec. 4.1), each the max over its 64-frame snippets (sec. 3.2), with
    # linspace boundaries (sec. 3.1); the centre crop (sec. 4.1: one map per clip); test videos
    # scored on the same 16 clips, as the authors' evaluation code does.
    train_defaults: ClassVar[dict] = {
        "optim": {"name": "adam", "lr": 1.0e-4},
        "sampler": {"batch_per_class": 10},
        "bags": {"rule": "rtfm", "pool": "max", "count": 16},
        "crop_mode": "mean",
        "score_on": "bags",
    }

    def __init__(
        self, feature_shape: tuple[int, ...], params: DamParams, n_classes: int = 1
    ) -> None:
        super().__init__()
        if len(feature_shape) != 2:
            raise ValueError(
                "dam needs per-clip features (t, n) with the I3D temporal axis kept, "
                f"e.g. (7, 1024); got feature_shape {tuple(feature_shape)}"
            )
        self.params = params
        self.feature_shape = tuple(feature_shape)
        n = feature_shape[1]
        self.feature_lstm = nn.LSTM(n, params.hidden, batch_first=True)
        self.dam_lstm = nn.LSTM(n, params.hidden, batch_first=True)
        self.clip_fc = nn.Linear(params.hidden, 1)
        self.scorer = _mlp(params.hidden, params.mlp_hidden, params.dropout)

    def attention(self, clips: Tensor, previous: Tensor) -> tuple[Tensor, Tensor]:
        """Eq. 1-5: ``(M, t, n), (M, t, n) -> Channel_A (M, n_h), Clip_A (M,)``."""
        p = self.params
        g = lstm_last(self.dam_lstm, dissimilarity_map(clips, previous, p.measure, p.normalise))
        channel_a = torch.softmax(g, dim=-1)  # eq. 4
        clip_a = torch.sigmoid(self.clip_fc(torch.tanh(g))).squeeze(-1)  # eq. 5, (M,)
        return channel_a, clip_a

    def clip_outputs(self, clips: Tensor, previous: Tensor) -> tuple[Tensor, Tensor]:
        """Score clips given their predecessors: ``(M, t, n), (M, t, n) -> D (M,), Clip_A (M,)``."""
        f_prime = lstm_last(self.feature_lstm, clips)  # (M, n_h)
        channel_a, clip_a = self.attention(clips, previous)
        f_star = f_prime + channel_a * f_prime
        return self.scorer(f_star).squeeze(-1), clip_a

    def outputs(self, features: Tensor) -> DamOutputs:
        """All per-clip outputs for ``(B, T, t, n)`` features."""
        if features.dim() != 4 or tuple(features.shape[2:]) != self.feature_shape:
            raise ValueError(
                f"dam expects (B, T, {self.feature_shape[0]}, {self.feature_shape[1]}) features, "
                f"got {tuple(features.shape)}"
            )
        B, T = features.shape[:2]
        previous = previous_clips(features, self.params.first_clip)
        d, clip_a = self.clip_outputs(features.flatten(0, 1), previous.flatten(0, 1))
        d, clip_a = d.view(B, T), clip_a.view(B, T)
        return DamOutputs(d, clip_a, d * clip_a + d)

    def forward(self, features: Tensor) -> Tensor:
        """``(B, T, t, n) -> (B, T)`` in [0, 1]: ``D`` (default) or ``wD / 2``."""
        out = self.outputs(features)
        return out.weighted / 2.0 if self.params.score == "weighted" else out.detection

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Weighted ranking loss (eq. 7) on a balanced batch: normal videos first, then abnormal."""
        P = balanced_half(batch.labels, "dam")
        wd = self.outputs(batch.features).weighted  # (B, T)
        normal, abnormal = wd[:P], wd[P:]
        hinge = mil_ranking_hinge(abnormal, normal, self.params.margin)
        smooth = temporal_smoothness(abnormal) * P  # eq. 7 sums over the whole batch
        sparse = sparsity(abnormal) * P
        total = hinge + self.params.lambda_smooth * smooth + self.params.lambda_sparse * sparse
        return {
            "loss": total,
            "hinge": hinge.detach(),
            "smooth": smooth.detach(),
            "sparse": sparse.detach(),
        }

    @torch.no_grad()
    def score_video(self, features: Tensor) -> Tensor:
        """``(N, t, n) -> (N,)``: online (each row a clip) or, with ``test_clips``, pooled clips."""
        k = self.params.test_clips
        N = features.shape[0]
        if k == 0 or N <= k:
            return self.forward(features.unsqueeze(0)).squeeze(0)
        ranges = linspace_ranges(N, k)
        pooled = pool_ranges(features, ranges, "max")  # (k, t, n)
        return spread_range_scores(N, ranges, self.forward(pooled.unsqueeze(0)).squeeze(0))


class DamStream:
    """Online scorer: feed clips one at a time as they arrive; keeps only the previous clip.

    ``push(clip)`` returns the same score as ``detector.score_video`` gives that clip offline
    (with ``test_clips = 0``). Put the detector in eval mode first.
    """

    def __init__(self, detector: Dam) -> None:
        self.detector = detector
        self.previous: Tensor | None = None

    def reset(self) -> None:
        """Start a new video."""
        self.previous = None

    @torch.no_grad()
    def push(self, clip: Tensor) -> float:
        """Score one ``(t, n)`` clip."""
        if tuple(clip.shape) != self.detector.feature_shape:
            raise ValueError(
                f"DamStream expects a {self.detector.feature_shape} clip, got {tuple(clip.shape)}"
            )
        if self.previous is None:
            first = self.detector.params.first_clip
            self.previous = torch.zeros_like(clip) if first == "zeros" else clip
        d, clip_a = self.detector.clip_outputs(clip.unsqueeze(0), self.previous.unsqueeze(0))
        self.previous = clip
        if self.detector.params.score == "weighted":
            return float((d * clip_a + d)[0] / 2.0)
        return float(d[0])


def stream_scores(detector: Dam, clips: Iterable[Tensor]) -> Iterator[float]:
    """Yield one score per ``(t, n)`` clip of one video, as the clips arrive."""
    stream = DamStream(detector)
    for clip in clips:
        yield stream.push(clip)
