"""MIL ranking: Sultani, Chen and Shah, "Real-world Anomaly Detection in Surveillance Videos", CVPR
2018.

Model (sec. 3.2 and 4.1): a 3-layer MLP scores every bag (segment) of a video: FC 512 + ReLU,
dropout 0.6, FC 32, dropout 0.6, FC 1 + sigmoid. As in the authors' released Keras code the 32-unit
layer has no activation (the paper does not say); ``relu_hidden2`` switches one on.

Loss, per pair of an abnormal bag ``B_a`` and a normal bag ``B_n`` (sec. 3.2; equation numbers as in
arXiv:1801.04264 — no copy of the paper is in shared/papers, so they are quoted from memory)::

    l(B_a, B_n) = max(0, 1 - max_i f(V_a^i) + max_i f(V_n^i))          eq. 4-5: ranking hinge on the
                                                                        top-scored segments
                  + lambda_1 * sum_i (f(V_a^i) - f(V_a^{i+1}))^2         eq. 6: temporal smoothness
                  + lambda_2 * sum_i f(V_a^i)                            eq. 6: sparsity

with ``lambda_1 = lambda_2 = 8e-5``; the final objective (eq. 7) adds a weight penalty ``||W||_F``,
which we realise as the optimizer's weight decay. Smoothness and sparsity act on the abnormal video
only. The terms are averaged over the pairs of a batch (the Keras code averages the hinge but sums
the two constraints over the batch; with lambda = 8e-5 that only rescales tiny terms).

Training settings (``train_defaults``): 32 bags cut by the Sultani rule (rounded linspace, mean, L2;
see wsvad.pipeline.bags), test videos scored on the same 32 bags with each bag's score given to its
snippets (as the authors' test script does), 30 normal + 30 abnormal videos per step, 20,000 steps
(``num_iters`` of the released code) and Adagrad. The
paper gives lr 0.001, the released Keras code 0.01; we use the paper's 1e-3 with weight decay 1e-3,
which is also what the widely used PyTorch reimplementation does. The Keras ``l2(0.001)`` kernel
penalty adds ``0.002 w`` to the gradient, weight decay 1e-3 adds ``0.001 w``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from wsvad.detectors.base import Batch, Detector
from wsvad.detectors.losses import mil_ranking_hinge, sparsity, temporal_smoothness
from wsvad.detectors.registry import register_detector


class MilParams(BaseModel):
    """Hyper-parameters of the MIL ranking detector (defaults: the paper's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden1: int = Field(512, ge=1)  # first FC layer
    hidden2: int = Field(32, ge=1)  # second FC layer
    dropout: float = Field(0.6, ge=0.0, lt=1.0)  # after each hidden layer
    relu_hidden2: bool = False  # the released code has a linear 32-unit layer
    margin: float = Field(1.0, gt=0.0)  # of the ranking hinge
    lambda_smooth: float = Field(8.0e-5, ge=0.0)  # lambda_1
    lambda_sparse: float = Field(8.0e-5, ge=0.0)  # lambda_2


@register_detector("mil", params=MilParams)
class Mil(Detector):
    """Sultani et al.'s MIL ranking MLP over ``(B, T, D)`` bag features."""

    sampler: ClassVar[str] = "balanced"
    feature_ndim: ClassVar[int] = 1
    example_feature_shape: ClassVar[tuple[int, ...]] = (32,)
    train_defaults: ClassVar[dict] = {
        "optim": {"name": "adagrad", "lr": 1.0e-3, "weight_decay": 1.0e-3},
        "sampler": {"batch_per_class": 30},
        "bags": {"rule": "sultani"},
        "score_on": "bags",
        "iterations": 20000,
    }

    def __init__(
        self, feature_shape: tuple[int, ...], params: MilParams, n_classes: int = 1
    ) -> None:
        super().__init__()
        (dim,) = feature_shape
        self.params = params
        self.fc1 = nn.Linear(dim, params.hidden1)
        self.fc2 = nn.Linear(params.hidden1, params.hidden2)
        self.fc3 = nn.Linear(params.hidden2, 1)
        self.dropout = nn.Dropout(params.dropout)
        # Keras' glorot_normal initialisation, as in the released code.
        for layer in (self.fc1, self.fc2, self.fc3):
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, features: Tensor) -> Tensor:
        """``(B, T, D)`` bag features -> ``(B, T)`` anomaly scores in ``[0, 1]``."""
        x = self.dropout(torch.relu(self.fc1(features)))  # (B, T, D) -> (B, T, 512)
        x = self.fc2(x)  # (B, T, 512) -> (B, T, 32)
        if self.params.relu_hidden2:
            x = torch.relu(x)
        x = self.dropout(x)
        return torch.sigmoid(self.fc3(x)).squeeze(-1)  # (B, T, 32) -> (B, T)

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """Ranking hinge + smoothness + sparsity over the (normal i, abnormal B/2 + i) pairs."""
        scores = self.forward(batch.features)  # (B, T)
        half = scores.shape[0] // 2
        normal, abnormal = scores[:half], scores[half:]
        hinge = mil_ranking_hinge(abnormal, normal, margin=self.params.margin)
        smooth = temporal_smoothness(abnormal)
        sparse = sparsity(abnormal)
        total = hinge + self.params.lambda_smooth * smooth + self.params.lambda_sparse * sparse
        return {
            "loss": total,
            "hinge": hinge.detach(),
            "smooth": smooth.detach(),
            "sparse": sparse.detach(),
        }
