"""STA: spatial-temporal attention augmented MIL ranking (Liu, Liu, Zhu, Wei, Huang, Song,
ICASSP 2022). No public code: this is a reference implementation, equation by equation.

- sec. 2.2: the ``N`` clip features of a video form an ``N x C`` map ``F`` (one input channel). 1x1
  convolutions give queries and keys with ``D = 10`` channels (sec. 3.1). Eq. 1: the attention of
  position ``(i, j)`` over the positions in its row ``i`` and column ``j`` is the cosine similarity
  of ``q_(i,j)`` and ``k_(m,n)``. Eq. 2: softmax over those positions. Eq. 3:
  ``F~_(i,j) = sum M^{i,j} * F + F_(i,j)``. The operation is applied twice (``F -> F~ -> F^``).
- sec. 2.1: a bidirectional RNN replaces Sultani's FC scorer; sec. 3.1: two hidden layers of 64
  units, ReLU, sigmoid output.
- eq. 4: mutual cosine embedding loss on the boosted features of a normal and an abnormal video:
  ``1 - Avg_{i<j} cos(f^n_i, f^n_j) + Avg_{i<j} min(cos(f^p_i, f^p_j), xi)``, xi = 0.4.
- eq. 5-6: ``L = lambda_MCE * L_MCE + hinge + lambda_1 * smoothness + lambda_2 * sparsity``
  (the last two on the abnormal video), lambda_MCE = 2e-2, lambda_1 = 2e-4, lambda_2 = 4e-5;
  Adam, lr 1e-4.

Choices where the paper is vague (each a ``StaParams`` option or stated here):

- Softmax support: eq. 2 is read as in CCNet (the paper's reference [15]): over the ``N + C - 1``
  criss-cross positions only (the zeros of eq. 1 outside the cross are not positions), with the
  centre ``(i, j)`` counted once.
- Values: eq. 3 aggregates ``F`` itself (no value convolution, no learnt residual scale, unlike
  CCNet).
- ``share_weights``: the two passes reuse the same query/key convolutions ("applied recurrently", as
  CCNet's recurrent criss-cross attention); ``False`` gives each pass its own.
- bd-RNN: "two hidden layers with 64 units" = a 2-layer bidirectional Elman RNN with ReLU, 64 units
  per direction, then FC 128 -> 1 with sigmoid, applied at every clip.
- eq. 4-5 are written for one normal/abnormal pair; with a balanced batch of P pairs the terms are
  averaged over the pairs.
- Training uses Sultani's segmentation (sec. 3.1: 32 segments per video). ``score_video`` mean-pools
  longer test videos into ``test_segments`` segments (RTFM linspace rule, as ``bags.rule: rtfm``)
  and gives every snippet its segment's score; ``test_segments: 0`` scores the whole snippet
  sequence as one map.
- Memory and speed: eq. 2's ``N x C x C`` row weights (134 MB a video at N=32, C=1024) are never
  stored; ``_RowAttention`` computes them two rows at a time and recomputes them in the backward
  pass (4x faster than the einsum formulation with per-video checkpointing, equal within float32
  rounding: tests/detectors/test_sta_detector.py). ``checkpoint_videos`` (default off) also
  recomputes the rest of the passes in the backward pass, that many videos at a time.

Parameters as built (defaults, C = 1024): 164,521 (the paper gives no count).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from wsvad.detectors.base import Batch, Detector
from wsvad.detectors.layers import linspace_ranges, pool_ranges, spread_range_scores
from wsvad.detectors.losses import (
    balanced_half,
    mil_ranking_hinge,
    sparsity,
    temporal_smoothness,
)
from wsvad.detectors.registry import register_detector


class StaParams(BaseModel):
    """STA hyper-parameters: the paper's (sec. 3.1) unless the module docstring says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attention_channels: int = Field(10, ge=1)  # D, channels of the query and key maps
    passes: int = Field(2, ge=1)  # recurrent criss-cross passes
    share_weights: bool = True  # the passes reuse one query/key pair
    rnn_hidden: int = Field(64, ge=1)  # units per direction of each bd-RNN layer
    rnn_layers: int = Field(2, ge=1)  # hidden layers of the bd-RNN
    xi: float = Field(0.4, ge=-1.0, le=1.0)  # margin of eq. 4
    lambda_mce: float = Field(2.0e-2, ge=0.0)  # weight of L_MCE, eq. 6
    lambda_smooth: float = Field(2.0e-4, ge=0.0)  # lambda_1 of eq. 5
    lambda_sparse: float = Field(4.0e-5, ge=0.0)  # lambda_2 of eq. 5
    margin: float = Field(1.0, gt=0.0)  # hinge margin of eq. 5
    test_segments: int = Field(32, ge=0)  # score_video pools into this many segments (0 = none)
    checkpoint_videos: int = Field(0, ge=0)  # videos per checkpointed chunk when training (0 = off)


# Videos x rows per step of the fused row attention: a (rows, C, C) block of exp() logits (4 MB a
# row at C = 1024) stays in cache between the two matmuls instead of round-tripping through memory.
ROW_BLOCK = 2


class _RowAttention(torch.autograd.Function):
    """``exp(q k^T) @ values`` per row, ``(M, C, D), (M, C, D), (M, C, V) -> (M, C, V)``.

    The ``(M, C, C)`` weights of eq. 2 are never stored: the forward computes them a block of rows
    at a time, and the backward recomputes them (one extra exp() instead of autograd keeping 134 MB
    a video, or activation checkpointing re-running the whole pass).
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, q: Tensor, k: Tensor, values: Tensor) -> Tensor:
        ctx.save_for_backward(q, k, values)
        out = []
        for s in range(0, q.shape[0], ROW_BLOCK):
            weights = _row_weights(q[s : s + ROW_BLOCK], k[s : s + ROW_BLOCK])
            out.append(torch.bmm(weights, values[s : s + ROW_BLOCK].to(weights.dtype)))
        return torch.cat(out)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, values = ctx.saved_tensors
        grad_q, grad_k, grad_values = [], [], []
        for s in range(0, q.shape[0], ROW_BLOCK):
            qs, ks = q[s : s + ROW_BLOCK], k[s : s + ROW_BLOCK]
            weights = _row_weights(qs, ks)
            gs = grad[s : s + ROW_BLOCK].to(weights.dtype)
            qs, ks, vs = qs.to(weights.dtype), ks.to(weights.dtype), values[s : s + ROW_BLOCK]
            # W^T x is computed as (x^T W)^T: the thin operand is transposed, not the C x C block
            grad_values.append(torch.bmm(gs.transpose(1, 2), weights).transpose(1, 2))
            # d logits = d weights * weights (d exp(x) = exp(x) dx), in place on the block
            grad_logits = torch.bmm(gs, vs.to(gs.dtype).transpose(1, 2)).mul_(weights)
            grad_q.append(torch.bmm(grad_logits, ks))
            grad_k.append(torch.bmm(qs.transpose(1, 2), grad_logits).transpose(1, 2))
        return (
            torch.cat(grad_q).to(q.dtype),
            torch.cat(grad_k).to(k.dtype),
            torch.cat(grad_values).to(values.dtype),
        )


def _row_weights(q: Tensor, k: Tensor) -> Tensor:
    """``exp(q k^T)``, ``(M, C, D), (M, C, D) -> (M, C, C)``; ``k^T`` made contiguous first (the
    matmul with the thin D = 10 inner dimension is twice as fast that way)."""
    return torch.bmm(q, k.transpose(1, 2).contiguous()).exp_()


class CrissCrossAttention(nn.Module):
    """One pass of eq. 1-3 on a one-channel ``(B, N, C)`` map; returns ``(B, N, C)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(1, channels, kernel_size=1)
        self.key = nn.Conv2d(1, channels, kernel_size=1)

    def unit_queries_keys(self, fmap: Tensor) -> tuple[Tensor, Tensor]:
        """Eq. 1's unit vectors: ``(B, N, C) -> (B, N, C, D)`` queries and keys."""
        x = fmap.unsqueeze(1)  # (B, 1, N, C)
        q = F.normalize(self.query(x).permute(0, 2, 3, 1), dim=-1)  # (B, N, C, D)
        k = F.normalize(self.key(x).permute(0, 2, 3, 1), dim=-1)
        return q, k

    def forward(self, fmap: Tensor) -> Tensor:
        B, N, C = fmap.shape
        q, k = self.unit_queries_keys(fmap)
        D = q.shape[-1]
        # Row i: sum_n exp(cos(q_ij, k_in)) [F_in, 1] -> numerator and softmax normaliser at once.
        values = torch.stack([fmap, torch.ones_like(fmap)], dim=-1)  # (B, N, C, 2)
        row = _RowAttention.apply(
            q.reshape(B * N, C, D), k.reshape(B * N, C, D), values.reshape(B * N, C, 2)
        ).reshape(B, N, C, 2)
        # Column j (N x N per column, small): the centre (i, j) is already in its row, keep it once.
        # Cosines are in [-1, 1], so exp() needs no max-subtraction for stability.
        q_col, k_col = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3)  # (B, C, N, D)
        not_centre = ~torch.eye(N, dtype=torch.bool, device=fmap.device)
        e_col = (q_col @ k_col.transpose(-1, -2)).exp() * not_centre  # (B, C, N, N)
        col_num = (e_col @ fmap.transpose(1, 2).unsqueeze(-1)).squeeze(-1)  # (B, C, N)
        aggregated = row[..., 0] + col_num.transpose(1, 2)
        norm = row[..., 1] + e_col.sum(dim=-1).transpose(1, 2)
        return aggregated / norm + fmap  # eq. 3


def mutual_cosine_embedding_loss(normal: Tensor, abnormal: Tensor, xi: float = 0.4) -> Tensor:
    """Eq. 4, averaged over pairs: ``(P, N, C), (P, N, C) -> ()``."""
    N = normal.shape[1]
    # the pairs i < j as index lists, not a boolean mask: no data-dependent nonzero() (a device
    # sync on CUDA; unsupported on the meta device)
    rows, cols = torch.triu_indices(N, N, offset=1, device=normal.device)

    def pair_cosines(feats: Tensor) -> Tensor:
        unit = F.normalize(feats, dim=-1)
        return (unit @ unit.transpose(1, 2))[:, rows, cols]  # (P, N(N-1)/2)

    # every video has the same N(N-1)/2 pairs: the mean over all of them is the mean over the
    # videos of each video's Avg_{i<j}
    pull = 1.0 - pair_cosines(normal).mean()
    push = torch.clamp(pair_cosines(abnormal), max=xi).mean()
    return pull + push


@register_detector("sta", params=StaParams)
class Sta(Detector):
    """Recurrent criss-cross attention on the ``N x C`` map, then a bidirectional RNN scorer."""

    sampler: ClassVar[str] = "balanced"
    feature_ndim: ClassVar[int] = 1
    example_feature_shape: ClassVar[tuple[int, ...]] = (32,)
    example_params: ClassVar[dict] = {"rnn_hidden": 8}
    # sec. 3.1: Adam, lr 1e-4; the batch is Sultani et al.'s (30 + 30), which STA says it follows.
    train_defaults: ClassVar[dict] = {
        "optim": {"name": "adam", "lr": 1.0e-4},
        "sampler": {"batch_per_class": 30},
    }

    def __init__(
        self, feature_shape: tuple[int, ...], params: StaParams, n_classes: int = 1
    ) -> None:
        super().__init__()
        if len(feature_shape) != 1:
            raise ValueError(
                "sta needs one feature vector per snippet, (C,); "
                f"got feature_shape {tuple(feature_shape)}"
            )
        self.params = params
        n_modules = 1 if params.share_weights else params.passes
        self.attention = nn.ModuleList(
            [CrissCrossAttention(params.attention_channels) for _ in range(n_modules)]
        )
        self.rnn = nn.RNN(
            feature_shape[0],
            params.rnn_hidden,
            num_layers=params.rnn_layers,
            nonlinearity="relu",
            bidirectional=True,
            batch_first=True,
        )
        self.head = nn.Linear(2 * params.rnn_hidden, 1)

    def _attend(self, fmap: Tensor) -> Tensor:
        for p in range(self.params.passes):
            fmap = self.attention[0 if self.params.share_weights else p](fmap)
        return fmap

    def boost(self, features: Tensor) -> Tensor:
        """The STA module: ``(B, N, C) -> (B, N, C)`` boosted features ``F^``."""
        if features.dim() != 3:
            raise ValueError(f"sta expects (B, N, C) features, got {tuple(features.shape)}")
        chunk = self.params.checkpoint_videos
        if chunk and torch.is_grad_enabled() and self.training:
            parts = [
                checkpoint(self._attend, features[i : i + chunk], use_reentrant=False)
                for i in range(0, features.shape[0], chunk)
            ]
            return torch.cat(parts)
        return self._attend(features)

    def score_boosted(self, boosted: Tensor) -> Tensor:
        """bd-RNN regression: ``(B, N, C) -> (B, N)`` in [0, 1]."""
        out, _ = self.rnn(boosted)  # (B, N, 2 * hidden)
        return torch.sigmoid(self.head(out)).squeeze(-1)

    def forward(self, features: Tensor) -> Tensor:
        """``(B, N, C) -> (B, N)`` anomaly scores in [0, 1]."""
        return self.score_boosted(self.boost(features))

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Eq. 6 on a balanced batch (normal videos first, then abnormal, paired i <-> P + i)."""
        P = balanced_half(batch.labels, "sta")
        p = self.params
        boosted = self.boost(batch.features)
        scores = self.score_boosted(boosted)
        normal, abnormal = scores[:P], scores[P:]
        hinge = mil_ranking_hinge(abnormal, normal, p.margin)
        smooth, sparse = temporal_smoothness(abnormal), sparsity(abnormal)
        mce = mutual_cosine_embedding_loss(boosted[:P], boosted[P:], p.xi)
        total = p.lambda_mce * mce + hinge + p.lambda_smooth * smooth + p.lambda_sparse * sparse
        return {
            "loss": total,
            "hinge": hinge.detach(),
            "mce": mce.detach(),
            "smooth": smooth.detach(),
            "sparse": sparse.detach(),
        }

    @torch.no_grad()
    def score_video(self, features: Tensor) -> Tensor:
        """``(N, C) -> (N,)``: mean-pooled into ``test_segments`` segments when longer (see the
        module docstring)."""
        k = self.params.test_segments
        N = features.shape[0]
        if k == 0 or N <= k:
            return self.forward(features.unsqueeze(0)).squeeze(0)
        ranges = linspace_ranges(N, k)
        pooled = pool_ranges(features, ranges, "mean")  # (k, C)
        return spread_range_scores(N, ranges, self.forward(pooled.unsqueeze(0)).squeeze(0))
