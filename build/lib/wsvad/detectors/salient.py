"""Salient self-attention (Watanabe, Okabe, Harada, Kashima: "Real-world Video Anomaly Detection by
Extracting Salient Features in Videos", ICIP 2022).

Model (Sec. 3, Fig. 1): Atten-MLP1 maps each of the T segment features ``F_{i,j}`` (D-dim) to
``d_a`` units with tanh (``A_1``, d_a x T); Atten-MLP2 maps those to ``r`` units, softmax over time
(``A_2``, r x T); dropout 30 %; ``M = F_i A_2^t`` (D x r) is flattened and scored by FC1 (32 units,
identity) and FC2 (1 unit, sigmoid). Loss: BCE between the video score and the video label; the
model is not MIL and is invariant to the order of the segments. Sec. 4.3: an optional bidirectional
LSTM (hidden 256) in front of Atten-MLP1 (used for XD-Violence with I3D + VGGish audio features;
here the input dimension is whatever the store provides). Inference (Sec. 3.2): the N snippets of a
test video are cut into bags of ``l`` snippets, each bag is scored on its own, and its score is
given to its snippets. Implementation details (Sec. 4.2): RAdam, lr 1e-3, 32 normal + 32 abnormal
videos per batch, T = 32, 10 crops (UCF, ShanghaiTech) or 5 crops (XD) ->
configs/train/*_salient.yaml.

Parameter count (Table 6: 328,004 for d_a=64, r=3 and 721,992 for d_a=128, r=7) is reproduced
exactly with D = 2048 (the RTFM I3D features the paper used); with wsvad's 1024-d I3D it is 164,164
/ 361,544.

Choices where the paper is vague (each is a ``SalientParams`` field):
- ``dropout_at``: where the 30 % dropout acts. The paper says only "a dropout regularization of 30 %
  is also performed" while describing the attention; default ``"attention"`` drops entries of
  ``A_2`` after the softmax; ``"input"`` drops the segment features, ``"pooled"`` drops ``M``.
- ``pool_source``: with the BiLSTM, ``M`` pools the LSTM outputs (``"lstm"``, as in Lin et al. [14],
  which the paper follows) or the raw features (``"input"``).
- ``tail``: the bag formula of Sec. 3.2 ends with ``{F_{N-l+1}, ..., F_N}``, so when N is not a
  multiple of l the last bag is the final l snippets; snippets in two bags get the mean of both
  scores (``"last_window"``). ``"short_bag"`` instead scores the remainder as a shorter bag.
- ``forward`` on training bags ``(B, T, *F)`` gives every bag the video's score: the model only
  produces one score per sequence, which is exactly what the inference rule assigns to each segment.
- Multi-axis snippet features (e.g. ``(7, 1024)``) are flattened.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.nn import functional as F

from wsvad.detectors.base import Batch, Detector
from wsvad.detectors.layers import flat_dim, flatten_snippets, spread_range_scores, window_ranges
from wsvad.detectors.registry import register_detector


class SalientParams(BaseModel):
    """Hyper-parameters; defaults are the paper's base model (d_a=64, r=3, used on all datasets)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    d_a: int = Field(64, ge=1, description="Atten-MLP1 units (Sec. 3).")
    r: int = Field(3, ge=1, description="Atten-MLP2 units = attention heads (Sec. 3).")
    fc_hidden: int = Field(32, ge=1, description="FC1 units, identity activation (Sec. 3).")
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="Dropout rate (Sec. 3).")
    dropout_at: Literal["attention", "input", "pooled"] = "attention"
    split_size: int = Field(28, ge=1, description="Inference bag length l (UCF 28, SH 21, XD 9).")
    tail: Literal["last_window", "short_bag"] = "last_window"
    bilstm: bool = Field(False, description="BiLSTM in front of Atten-MLP1 (Sec. 4.3).")
    lstm_hidden: int = Field(256, ge=1, description="BiLSTM hidden units per direction (Sec. 4.3).")
    pool_source: Literal["lstm", "input"] = "lstm"


@register_detector("salient", params=SalientParams)
class Salient(Detector):
    """Self-attention pooling over all segments of a video, one anomaly score per video."""

    sampler: ClassVar[str] = "balanced"
    feature_ndim: ClassVar[int] = 1
    example_feature_shape: ClassVar[tuple[int, ...]] = (32,)
    # Sec. 4.2: RAdam, lr 1e-3, 32 normal + 32 abnormal videos; the paper gives no weight decay
    # and no training length, so those come from the train config / generic defaults.
    train_defaults: ClassVar[dict] = {
        "optim": {"name": "radam", "lr": 1.0e-3},
        "sampler": {"batch_per_class": 32},
    }

    def __init__(
        self, feature_shape: tuple[int, ...], params: SalientParams, n_classes: int = 1
    ) -> None:
        super().__init__()
        self.params = params
        self.feature_shape = tuple(feature_shape)
        in_dim = flat_dim(self.feature_shape)
        self.lstm = None
        if params.bilstm:
            self.lstm = nn.LSTM(in_dim, params.lstm_hidden, batch_first=True, bidirectional=True)
        att_dim = 2 * params.lstm_hidden if params.bilstm else in_dim
        pooled_dim = att_dim if (params.bilstm and params.pool_source == "lstm") else in_dim
        self.att1 = nn.Linear(att_dim, params.d_a)
        self.att2 = nn.Linear(params.d_a, params.r)
        self.fc1 = nn.Linear(pooled_dim * params.r, params.fc_hidden)
        self.fc2 = nn.Linear(params.fc_hidden, 1)
        self.drop = nn.Dropout(params.dropout)

    def attention(self, features: Tensor) -> Tensor:
        """``A_2`` before dropout: ``(B, T, *F) -> (B, r, T)``, each row sums to 1 over time."""
        return self._attend(flatten_snippets(features))[0]

    def _attend(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, T, D) -> (A_2 (B, r, T), pooling source (B, T, D'))``."""
        h = self.lstm(x)[0] if self.lstm is not None else x  # (B, T, D) -> (B, T, 2*hidden)
        a1 = torch.tanh(self.att1(h))  # (B, T, d_a)
        a2 = torch.softmax(self.att2(a1), dim=1).transpose(1, 2)  # softmax over T; (B, r, T)
        source = h if (self.lstm is not None and self.params.pool_source == "lstm") else x
        return a2, source

    def video_scores(self, features: Tensor) -> Tensor:
        """Anomaly score of each whole sequence: ``(B, T, *F) -> (B,)`` in ``[0, 1]``."""
        x = flatten_snippets(features)
        if self.params.dropout_at == "input":
            x = self.drop(x)
        a2, source = self._attend(x)
        if self.params.dropout_at == "attention":
            a2 = self.drop(a2)
        m = torch.bmm(a2, source)  # M = F A_2^t, transposed: (B, r, T) x (B, T, D) -> (B, r, D)
        m = m.flatten(1)  # (B, r * D)
        if self.params.dropout_at == "pooled":
            m = self.drop(m)
        return torch.sigmoid(self.fc2(self.fc1(m))).squeeze(1)  # FC1: identity activation (Sec. 3)

    def forward(self, features: Tensor) -> Tensor:
        """``(B, T, *F) -> (B, T)``: the video score given to every bag of the video."""
        return self.video_scores(features).unsqueeze(1).expand(-1, features.shape[1])

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """BCE between video scores and video labels (Sec. 3); the sampler only needs to balance."""
        scores = self.video_scores(batch.features)
        bce = F.binary_cross_entropy(scores, batch.labels.to(scores.dtype))
        return {"loss": bce, "bce": bce.detach()}

    @torch.no_grad()
    def score_video(self, features: Tensor) -> Tensor:
        """Sec. 3.2: bags of ``split_size`` snippets scored one by one: ``(N, *F) -> (N,)``."""
        n, length = features.shape[0], self.params.split_size
        x = flatten_snippets(features, lead=1)  # (N, D)
        if self.params.tail == "short_bag" or n <= length:
            starts = range(0, n, length)
            ranges = [(s, min(s + length, n)) for s in starts]
            scores = torch.stack([self.video_scores(x[s:e].unsqueeze(0))[0] for s, e in ranges])
        else:
            ranges = window_ranges(n, length)
            bags = torch.stack([x[s:e] for s, e in ranges])  # equal lengths: (m, l, D)
            scores = self.video_scores(bags)
        return spread_range_scores(n, ranges, scores)
