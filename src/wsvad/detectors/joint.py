"""Joint anomaly detection and classification (Majhi, Das, Bremond, Dash, Sa: "Weakly-supervised
Joint Anomaly Detection and Classification", FG 2021).

Model (Sec. III, Fig. 1-3), for a video of T segment features ``F_t`` (n-dim; Sec. IV-A uses I3D
with time kept and max-pooled inside segments, 7 x 1024 = 7168, flattened here):
- Stage C: a many-to-many LSTM (n_h = 1024 units) with a skip connection ``F_h^t = h_t (+) F_t``
  (concatenation, T x (n + n_h)); first-level attention, eq. (1): the l2-normalised ``F_t`` go
  through time-distributed perceptrons into a latent space L, are averaged over time, and a
  perceptron with T outputs gives the scores ``s^1``; ``alpha = softmax(s^1)``; ``F*_t = F_h^t +
  alpha_t F_h^t``.
- Stage D, detection: three time-distributed perceptrons, the 2nd with ``n_L = 96`` units, the last
  sigmoid -> segment scores. Second-level attention, eq. (2): ``s^2 = W_GL concat_t(W_L F'_t + b_L)
  + b_GL`` on the 96-d ``F'``, ``beta = sigmoid(s^2)``, ``F**_t = F*_t + beta_t F*_t``.
  Classification: ``F**`` averaged over time, a 2-layer perceptron, softmax over C + 1 classes.
- Losses (Sec. III-E): eq. (3) MIL ranking hinge on the max abnormal vs max normal segment score +
  lambda_1 smoothness + lambda_2 sparsity (lambda_1 = lambda_2 = 8e-5); eq. (4) class-weighted
  cross-entropy with weights ``1 - f_i``; eq. (5) ``sum_t (1 - alpha_t)^2 + sum_t ||beta_t||_2``;
  eq. (6) ``lambda_d L_D + (1 - lambda_d) L_C + lambda_att L_att`` with lambda_d = 0.9, lambda_att =
  0.1e-5. Adam lr 1e-4, 30 + 30 videos per batch, T = 32 (configs/train/*_joint.yaml).
The paper gives no parameter count; as built for n = 7168, n_h = 1024 and UCF-Crime's 14 classes the
model has 42,966,447 parameters (33.6M of them in the LSTM). ``feature_ndim = 2``: the train stage
takes it on I3D stores with time kept (``backbone_options.keep_time``); ``build_detector`` itself
accepts any feature shape. ``classify`` / ``classify_video`` give the class probabilities from which
the paper's mean average accuracy over classes is computed.

Choices where the paper is vague (each is a ``JointParams`` field):
- ``att1_latent`` (size of L, not given: 128) and ``att1_shared``: "time-distributed perceptrons"
  (Keras TimeDistributed) share weights over t (default); eq. (1) writes ``W_{L,t}``, so per-segment
  weights are available with ``att1_shared: false``.
- The l2 normalisation applies only to the attention input (Fig. 2); the LSTM sees raw features.
- ``det_hidden`` (1st detection layer, not given: 512 as in Sultani et al. whose loss the paper
  uses), ReLU activations and ``det_dropout`` 0.6 (Sultani et al.); ``F'`` is taken after the 2nd
  layer's ReLU.
- ``att2_latent`` (output of ``W_L^2``, not given: 32); ``cls_hidden`` (not given: 512, ReLU).
- Eq. (3) is applied per normal/abnormal pair and averaged; the smoothness and sparsity sums run
  over each abnormal video's segments and are averaged over videos (the same reduction as ``mil``).
- Eq. (4) lacks the minus sign of a cross-entropy; it is added, and the loss is averaged over the
  batch. ``class_frequencies`` gives ``f_i`` (training-set frequencies); unset, ``f_i`` is counted
  in the current batch.
- Eq. (5): ``beta_t`` is a scalar, so ``||beta_t||_2 = beta_t`` (``beta_penalty: abs``); ``square``
  uses ``beta_t^2``. The sums run over t and are averaged over the batch.
- Eqs. (1), (2) have T outputs, so the model is built for ``segments`` bags; ``score_video`` cuts a
  test video into that many segments with the linspace rule, pools them (``test_pool``: max, as the
  paper pools inside segments) and gives each snippet its segment's score.
- With ``n_classes < 2`` (a dataset without anomaly classes) the head has 2 classes:
  normal/abnormal.
"""

from __future__ import annotations

from typing import ClassVar, Literal, NamedTuple

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.nn import functional as F

from wsvad.detectors.base import Batch, Detector
from wsvad.detectors.layers import (
    flat_dim,
    flatten_snippets,
    linspace_ranges,
    pool_ranges,
    spread_range_scores,
)
from wsvad.detectors.losses import (
    balanced_half,
    mil_ranking_hinge,
    sparsity,
    temporal_smoothness,
)
from wsvad.detectors.recurrent import lstm_sequence
from wsvad.detectors.registry import register_detector


class JointOutputs(NamedTuple):
    """Everything one forward pass computes, for the loss and for inspection."""

    scores: Tensor  # (B, T) detection scores
    alpha: Tensor  # (B, T) first-level attention, softmax over T
    beta: Tensor  # (B, T) second-level attention, sigmoid
    logits: Tensor  # (B, n_classes) classification logits (softmax in classify)


class JointParams(BaseModel):
    """Hyper-parameters; defaults are the paper's numbers where it gives them (Sec. IV-A)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    segments: int = Field(32, ge=1, description="T, segments per video (Sec. IV-A).")
    lstm_hidden: int = Field(1024, ge=1, description="n_h (Sec. IV-A).")
    att1_latent: int = Field(128, ge=1)
    att1_shared: bool = True
    det_hidden: int = Field(512, ge=1)
    det_latent: int = Field(96, ge=1, description="n_L, 2nd detection layer (Sec. III-D).")
    det_dropout: float = Field(0.6, ge=0.0, lt=1.0)
    att2_latent: int = Field(32, ge=1)
    cls_hidden: int = Field(512, ge=1)
    margin: float = Field(1.0, gt=0.0, description="Hinge margin of eq. (3).")
    lambda_smooth: float = Field(8e-5, ge=0.0, description="lambda_1 of eq. (3).")
    lambda_sparse: float = Field(8e-5, ge=0.0, description="lambda_2 of eq. (3).")
    lambda_d: float = Field(0.9, ge=0.0, le=1.0, description="eq. (6).")
    lambda_att: float = Field(0.1e-5, ge=0.0, description="eq. (6).")
    beta_penalty: Literal["abs", "square"] = "abs"
    class_frequencies: list[float] | None = None
    test_pool: Literal["max", "mean"] = "max"


@register_detector("joint", params=JointParams)
class Joint(Detector):
    """LSTM + two-level temporal attention, a detection branch and a classification branch."""

    sampler: ClassVar[str] = "balanced"
    # The paper's input is I3D with time kept, (7, 1024) per segment; any F is flattened.
    feature_ndim: ClassVar[int] = 2
    example_feature_shape: ClassVar[tuple[int, ...]] = (2, 8)
    example_params: ClassVar[dict] = {
        "lstm_hidden": 8,
        "att1_latent": 4,
        "det_hidden": 16,
        "cls_hidden": 8,
    }
    # Sec. IV-A: Adam lr 1e-4, 30 positive + 30 negative videos per mini-batch, T = 32 segments;
    # no training length. Sec. III-B: each segment's feature is the max over its 64-frame clips.
    # Test videos: score_video cuts the raw snippets into T max-pooled segments itself.
    train_defaults: ClassVar[dict] = {
        "optim": {"name": "adam", "lr": 1.0e-4},
        "sampler": {"batch_per_class": 30},
        "bags": {"rule": "rtfm", "pool": "max", "count": 32},
        "score_on": "snippets",
    }

    def __init__(
        self, feature_shape: tuple[int, ...], params: JointParams, n_classes: int = 1
    ) -> None:
        super().__init__()
        p = self.params = params
        self.feature_shape = tuple(feature_shape)
        self.binary_head = int(n_classes) < 2
        self.n_classes = max(int(n_classes), 2)
        if p.class_frequencies is not None and len(p.class_frequencies) != self.n_classes:
            got = len(p.class_frequencies)
            want = self.n_classes
            raise ValueError(f"joint: class_frequencies has {got} values, expected {want}")
        n, T = flat_dim(self.feature_shape), p.segments
        self.lstm = nn.LSTM(n, p.lstm_hidden, batch_first=True)
        if p.att1_shared:
            self.att1_local = nn.Linear(n, p.att1_latent)
        else:
            self.att1_weight = nn.Parameter(torch.empty(T, n, p.att1_latent))
            self.att1_bias = nn.Parameter(torch.zeros(T, p.att1_latent))
            nn.init.uniform_(self.att1_weight, -(n**-0.5), n**-0.5)
        self.att1_global = nn.Linear(p.att1_latent, T)
        width = n + p.lstm_hidden
        self.det1 = nn.Linear(width, p.det_hidden)
        self.det2 = nn.Linear(p.det_hidden, p.det_latent)
        self.det3 = nn.Linear(p.det_latent, 1)
        self.drop = nn.Dropout(p.det_dropout)
        self.att2_local = nn.Linear(p.det_latent, p.att2_latent)
        self.att2_global = nn.Linear(T * p.att2_latent, T)
        self.cls1 = nn.Linear(width, p.cls_hidden)
        self.cls2 = nn.Linear(p.cls_hidden, self.n_classes)

    def explain(self, features: Tensor) -> JointOutputs:
        """``(B, T, *F)`` -> scores, attention weights alpha and beta, class logits."""
        x = flatten_snippets(features)  # (B, T, n)
        if x.shape[1] != self.params.segments:
            raise ValueError(f"joint: built for {self.params.segments} segments, got {x.shape[1]}")
        h = lstm_sequence(self.lstm, x)  # (B, T, n_h), = self.lstm(x)[0] (recurrent.py: why)
        fh = torch.cat([h, x], dim=2)  # skip connection F_h^t = h_t (+) F_t: (B, T, n_h + n)
        xn = F.normalize(x, dim=2)  # l2-normalised input of the first-level attention (Fig. 2)
        if self.params.att1_shared:
            latent = self.att1_local(xn).mean(1)  # eq. (1) inner sum / T: (B, T, L) -> (B, L)
        else:
            latent = (torch.einsum("btn,tnl->btl", xn, self.att1_weight) + self.att1_bias).mean(1)
        alpha = torch.softmax(self.att1_global(latent), dim=1)  # (B, T)
        f_star = fh * (1 + alpha.unsqueeze(2))  # F*_t = F_h^t + alpha_t F_h^t
        z = self.drop(F.relu(self.det1(f_star)))  # (B, T, det_hidden)
        f_prime = F.relu(self.det2(z))  # (B, T, 96)
        scores = torch.sigmoid(self.det3(self.drop(f_prime))).squeeze(2)  # (B, T)
        s2 = self.att2_global(self.att2_local(f_prime).flatten(1))  # eq. (2), concat over T: (B, T)
        beta = torch.sigmoid(s2)
        f_2star = f_star * (1 + beta.unsqueeze(2))  # F**_t = F*_t + beta_t F*_t
        pooled = f_2star.mean(1)  # (B, n + n_h)
        logits = self.cls2(F.relu(self.cls1(pooled)))  # (B, n_classes); softmax in classify / loss
        return JointOutputs(scores, alpha, beta, logits)

    def forward(self, features: Tensor) -> Tensor:
        """``(B, T, *F) -> (B, T)`` segment anomaly scores in ``[0, 1]``."""
        return self.explain(features).scores

    def classify(self, features: Tensor) -> Tensor:
        """Class probabilities (Normal + anomaly classes): ``(B, T, *F) -> (B, n_classes)``."""
        return torch.softmax(self.explain(features).logits, dim=1)

    def class_targets(self, batch: Batch) -> Tensor:
        """``(B,)`` int64 class targets: ``class_index``, or the video label for a 2-class head."""
        target = batch.labels.long() if self.binary_head else batch.class_index.long()
        if int(target.max()) >= self.n_classes or int(target.min()) < 0:
            top = self.n_classes - 1
            raise ValueError(f"joint: class_index {target.tolist()} outside 0..{top}")
        return target

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Eq. (6) on a balanced batch (first half normal, second half abnormal, paired)."""
        p = self.params
        half = balanced_half(batch.labels, "joint")
        out = self.explain(batch.features)
        normal, abnormal = out.scores[:half], out.scores[half:]
        hinge = mil_ranking_hinge(abnormal, normal, margin=p.margin)
        smooth, sparse = temporal_smoothness(abnormal), sparsity(abnormal)
        loss_d = hinge + p.lambda_smooth * smooth + p.lambda_sparse * sparse  # eq. (3)

        target = self.class_targets(batch)
        if p.class_frequencies is not None:
            freq = torch.tensor(p.class_frequencies, dtype=out.logits.dtype, device=target.device)
        else:
            counts = torch.bincount(target, minlength=self.n_classes)
            freq = counts.to(out.logits.dtype) / len(target)
        weight = (1 - freq)[target]  # 1 - f_i of the true class (eq. 4)
        log_prob = torch.log_softmax(out.logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        loss_c = -(weight * log_prob).mean()

        beta_term = out.beta if p.beta_penalty == "abs" else out.beta**2
        loss_att = (((1 - out.alpha) ** 2).sum(1) + beta_term.sum(1)).mean()  # eq. (5)
        total = p.lambda_d * loss_d + (1 - p.lambda_d) * loss_c + p.lambda_att * loss_att
        return {
            "loss": total,
            "hinge": hinge.detach(),
            "smooth": smooth.detach(),
            "sparse": sparse.detach(),
            "loss_d": loss_d.detach(),
            "loss_c": loss_c.detach(),
            "loss_att": loss_att.detach(),
        }

    def _segment(self, features: Tensor) -> tuple[Tensor, list[tuple[int, int]]]:
        x = flatten_snippets(features, lead=1)  # (N, n)
        ranges = linspace_ranges(x.shape[0], self.params.segments)
        return pool_ranges(x, ranges, self.params.test_pool).unsqueeze(0), ranges  # (1, T, n)

    @torch.no_grad()
    def score_video(self, features: Tensor) -> Tensor:
        """``(N, *F) -> (N,)``: cut into T segments, score them, spread back to the snippets."""
        segments, ranges = self._segment(features)
        return spread_range_scores(features.shape[0], ranges, self.forward(segments)[0])

    @torch.no_grad()
    def classify_video(self, features: Tensor) -> Tensor:
        """Class probabilities of one test video: ``(N, *F) -> (n_classes,)``."""
        return self.classify(self._segment(features)[0])[0]
