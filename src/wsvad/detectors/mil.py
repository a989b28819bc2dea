"""MIL ranking: Sultani, Chen and Shah, "Real-world Anomaly Detection in Surveillance Videos", CVPR
2018.

Model (sec. 3.2 and 4.1): a 3-layer MLP scores every bag (segment) of a video: FC 512 + ReLU,
dropout 0.6, FC 32, dropout 0.6, FC 1 + sigmoid, glorot-normal weights and zero biases. As in the
authors' released Keras code the 32-unit layer has no activation (the paper does not say);
``relu_hidden2`` switches one on.

Loss (sec. 3.2; equation numbers as in arXiv:1801.04264; no copy of the paper is in shared/papers,
so they are quoted from memory): a ranking hinge on the top-scored segments (eq. 4-5), temporal
smoothness ``sum_i (f(V_a^i) - f(V_a^{i+1}))^2`` and sparsity ``sum_i f(V_a^i)`` on the abnormal
video (eq. 6, ``lambda_1 = lambda_2 = 8e-5``) and a weight penalty (eq. 7). How the terms are
combined over a batch is a choice the paper leaves open; ``objective`` names the two in use:

- ``released`` (default): the authors' ``TrainingAnomalyDetector_public.py``
  (``custom_objective``), read, not copied. For every normal video i of the batch the hinge
  ``max(0, 1 - max_t f(V_a^j) + max_t f(V_n^i))`` is SUMMED over all abnormal videos j, then
  averaged over the normal videos; smoothness and sparsity are summed over the abnormal videos::

      L = 1/N sum_i sum_j max(0, 1 - max f(a_j) + max f(n_i))
          + 8e-5 sum_j sum_t (f(a_j^t) - f(a_j^{t+1}))^2 + 8e-5 sum_j sum_t f(a_j^t)
          + 0.001 (||W1||^2 + ||W2||^2 + ||W3||^2)

  The last term is Keras' ``W_regularizer=l2(0.001)`` on the three kernels (``0.001 sum w^2``, no
  bias), added to the loss (``weight_penalty: kernel_l2``). The code trains it with Keras 1's
  Adagrad(lr 0.01, epsilon 1e-8; accumulators start at 0, so torch's Adagrad with
  ``initial_accumulator_value 0`` and ``eps 1e-8`` is the same update), 30 + 30 videos per step,
  ``num_iters = 20000`` (``train_defaults``). The paper's text gives lr 0.001; the code's 0.01 is
  the default here because the code produced the published model.
- ``paired_mean``: normal video i is paired with abnormal video i only, and hinge, smoothness and
  sparsity are averaged over the pairs. This is what the widely used PyTorch port
  (github.com/ekosman/AnomalyDetectionCVPR2018-Pytorch, ``custom_objective``) does; that port adds
  ``0.001 ||[W; b]||_2`` per layer, the UNSQUARED norm of weights and biases
  (``weight_penalty: layer_norm``) and trains with Adadelta(lr 0.01, eps 1e-8), 30 + 30 videos,
  2 x 20,000 iterations: configs/train/ucf_mil_pytorch_port.yaml. wsvad's earlier recipe (this
  objective, ``weight_penalty: none`` with the optimizer's weight decay 1e-3 on every parameter,
  Adagrad lr 1e-3) is reachable with the same options.

Parity: tests/detectors/test_mil_parity.py checks two training steps of these defaults (loss terms,
gradients, updated weights) against a float64 numpy transcription of the Theano objective, the l2
penalties and Keras 1's Adagrad (tools/parity/mil_released_step.py; its hand-written gradients
equal TensorFlow autodiff to 3e-14): loss within 2e-7 relative, weights within 1e-6.

Scoring: 32 bags cut by the Sultani rule (rounded linspace, mean, L2; see wsvad.pipeline.bags),
test videos scored on the same 32 bags with each bag's score given to its snippets, as the
authors' test script does.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from wsvad.detectors.base import Batch, Detector
from wsvad.detectors.losses import (
    balanced_half,
    mil_all_pairs_hinge,
    mil_ranking_hinge,
    sparsity,
    temporal_smoothness,
)
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
    # released: the Keras code's all-pairs hinge, sums over the batch; paired_mean: the PyTorch
    # port's (and wsvad's earlier) mean over (normal i, abnormal i) pairs
    objective: Literal["released", "paired_mean"] = "released"
    # kernel_l2: Keras l2(c) on the three kernels, c * sum w^2; layer_norm: the PyTorch port's
    # c * ||[W; b]||_2 per layer (unsquared); none: no term (use optim.weight_decay instead)
    weight_penalty: Literal["kernel_l2", "layer_norm", "none"] = "kernel_l2"
    penalty_weight: float = Field(1.0e-3, ge=0.0)  # c above (the released code's 0.001)


@register_detector("mil", params=MilParams)
class Mil(Detector):
    """Sultani et al.'s MIL ranking MLP over ``(B, T, D)`` bag features."""

    sampler: ClassVar[str] = "balanced"
    feature_ndim: ClassVar[int] = 1
    example_feature_shape: ClassVar[tuple[int, ...]] = (32,)
    # The released Keras code: Adagrad(lr=0.01, epsilon=1e-08), Keras 1 accumulators start at 0;
    # the l2 kernel penalty is a loss term (weight_penalty), so no weight decay.
    train_defaults: ClassVar[dict] = {
        "optim": {
            "name": "adagrad",
            "lr": 1.0e-2,
            "weight_decay": 0.0,
            "eps": 1.0e-8,
            "initial_accumulator_value": 0.0,
        },
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
        """Ranking hinge + smoothness + sparsity (+ weight penalty), combined over the batch as
        ``params.objective`` says (module docstring). The first half of the batch is normal."""
        p = self.params
        half = balanced_half(batch.labels, "mil")
        scores = self.forward(batch.features)  # (B, T)
        normal, abnormal = scores[:half], scores[half:]
        if p.objective == "released":
            hinge = mil_all_pairs_hinge(abnormal, normal, margin=p.margin)
            smooth = temporal_smoothness(abnormal) * abnormal.shape[0]  # summed over videos
            sparse = sparsity(abnormal) * abnormal.shape[0]
        else:
            hinge = mil_ranking_hinge(abnormal, normal, margin=p.margin)
            smooth = temporal_smoothness(abnormal)
            sparse = sparsity(abnormal)
        penalty = self.weight_penalty()
        total = hinge + p.lambda_smooth * smooth + p.lambda_sparse * sparse + penalty
        return {
            "loss": total,
            "hinge": hinge.detach(),
            "smooth": smooth.detach(),
            "sparse": sparse.detach(),
            "penalty": penalty.detach(),
        }

    def weight_penalty(self) -> Tensor:
        """The weight term of eq. 7 as ``params.weight_penalty`` names it (a scalar)."""
        p = self.params
        layers = (self.fc1, self.fc2, self.fc3)
        if p.weight_penalty == "kernel_l2":  # Keras l2: c * sum(W^2), kernels only
            return p.penalty_weight * sum((layer.weight**2).sum() for layer in layers)
        if p.weight_penalty == "layer_norm":  # the port: c * ||cat(W, b)||_2, unsquared
            return p.penalty_weight * sum(
                torch.cat([layer.weight.reshape(-1), layer.bias]).norm() for layer in layers
            )
        return self.fc3.weight.new_zeros(())
