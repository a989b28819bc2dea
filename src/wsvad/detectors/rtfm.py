"""RTFM: Robust Temporal Feature Magnitude learning (Tian, Pang, Chen, Singh, Verjans, Carneiro,
"Weakly-supervised Video Anomaly Detection with Robust Temporal Feature Magnitude Learning", ICCV
2021).

There is no paper file in this repository; the model was checked against the public code
(github.com/tianyu0207/RTFM, ``model.py``/``train.py``/``main.py``), read, not copied. With the
code's weights loaded (2048-d, 10 crops inside, eval mode) this module reproduces its snippet scores
and feature magnitudes exactly and its training loss to 1e-6.

Model (paper Sec. 3.2, code ``Aggregate``): the multi-scale temporal network (MTN) runs three
dilated temporal convolutions (kernel 3, dilation 1, 2, 4, 512 channels each, ReLU + BatchNorm: the
pyramid of dilated convolutions) and a 1x1 convolution to 512 channels followed by a non-local block
(the temporal self-attention); the four outputs are concatenated (2048), fused by a kernel-3
convolution back to D channels (ReLU + BatchNorm) and added to the input (residual). Dropout 0.7,
then a 3-layer MLP (512, 128, 1; ReLU, dropout 0.7, sigmoid) scores each snippet. The snippet
features' l2 norms are the feature magnitudes. Top-k (k = 3) magnitude snippets of each video are
selected; BCE on the mean score of those k snippets against the video label; a magnitude margin loss
(margin 100, weight 1e-4) between the abnormal and the paired normal video; temporal smoothness and
sparsity on abnormal scores. With D = 2048 (the paper's I3D features) the model has 24,718,849
parameters, the figure Watanabe et al. (ICIP 2022, Table 6) quote for RTFM; with wsvad's 1024-d I3D
it has 12,658,177.

Differences between paper and public code (the code produced the published numbers, so the defaults
follow the code; each difference is a ``RtfmParams`` field):
- ``magnitude_loss``: the paper's loss is the hinge ``max(0, m - d_k(X+) + d_k(X-))`` with ``d_k``
  the mean of the top-k magnitudes (``"paper"``); the code computes ``(|m - ||mean_k x+||| +
  ||mean_k x-||)^2`` per crop and pair, i.e. the norm of the mean top-k feature, pulling abnormal
  magnitudes to exactly m and normal ones to 0 (``"code"``, default).
- ``magnitude_dropout``: in training the code multiplies the magnitudes by a dropout mask (rate 0.7)
  before top-k, so the k snippets are drawn from a random ~30 % of the video; the paper describes a
  plain top-k.
- ``smooth_across_videos``: the code flattens the abnormal scores of the whole batch, so the
  smoothness term also compares the last snippet of one video with the first of the next (default
  true).
- ``sparsity_norm``: the code's "sparsity" is the l2 norm of all abnormal scores of the batch
  (``l2``), not the l1 sum of Sultani et al. (``l1``).
- Loss weights are the code's: smoothness 8e-4, sparsity 8e-3, magnitude 1e-4; Adam lr 1e-3 with
  weight decay 5e-3, 32 + 32 videos per step, 15000 steps (code defaults) ->
  configs/train/*_rtfm.yaml. The paper text is not in this repository, so its stated values were not
  compared with these.
- The MTN's branch width is fixed at 512 in the code (``branch_channels``); the fusing convolution
  maps back to the input width D so the residual works for any D.
- As in the code the non-local block's output convolution keeps a bias although a BatchNorm follows
  (it gets no useful gradient, but it is part of the published parameter count), and the block's
  BatchNorm scale starts at zero (``non_local_zero_init``), so the block starts as the identity.

Crops: the code feeds all 10 crops of a video ``(B, C, T, D)``, runs each crop through the network,
averages the scores and the magnitudes over crops before top-k, and applies the magnitude loss per
crop with the crop-averaged top-k indices. With ``crops_inside: true`` the detector expects
``feature_shape = (C, *F)`` and batches ``(B, T, C, *F)`` and does exactly that; the trainer's
``crop_mode: inside`` (the default for rtfm and in every ``configs/train/*_rtfm.yaml``) sets it and
builds the detector with the store's crops, and test videos are scored with all crops inside too.
With ``crops_inside: false`` every batch item is one crop (``crop_mode: separate``) or the crop
mean, and ``C = 1``. ``score_video`` accepts ``(N, *F)`` (one crop) or ``(N, C, *F)`` (crops
averaged inside the model, any C).
"""

from __future__ import annotations

from typing import ClassVar, Literal, NamedTuple

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.nn import functional as F

from wsvad.detectors.base import Batch, Detector
from wsvad.detectors.conv import conv1d
from wsvad.detectors.layers import flat_dim
from wsvad.detectors.losses import balanced_half
from wsvad.detectors.registry import register_detector


class RtfmParams(BaseModel):
    """Hyper-parameters; defaults are those of the public RTFM code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(3, ge=1, description="Top-k snippets by magnitude (T // 10 for T = 32).")
    margin: float = Field(100.0, gt=0.0, description="Magnitude margin m.")
    alpha: float = Field(1e-4, ge=0.0, description="Weight of the magnitude loss.")
    lambda_smooth: float = Field(8e-4, ge=0.0)
    lambda_sparse: float = Field(8e-3, ge=0.0)
    dropout: float = Field(0.7, ge=0.0, lt=1.0)
    branch_channels: int = Field(512, ge=2, description="Width of each MTN branch.")
    magnitude_loss: Literal["code", "paper"] = "code"
    magnitude_dropout: bool = True
    smooth_across_videos: bool = True
    sparsity_norm: Literal["l2", "l1"] = "l2"
    crops_inside: bool = False
    non_local_zero_init: bool = Field(True, description="Non-local block starts as the identity.")


class RtfmOutputs(NamedTuple):
    """One forward pass: crop-averaged snippet scores and the MTN features (norms = magnitudes)."""

    scores: Tensor  # (B, T)
    features: Tensor  # (B, C, T, D)


class NonLocal1d(nn.Module):
    """Embedded-dot-product non-local block over time (Wang et al. 2018), the MTN's self-attention.

    ``z = W(theta(x)^T phi(x) / T g(x)) + x`` (no softmax, scaled by T as in the code); W ends in a
    BatchNorm whose scale the detector zero-initialises, so the block starts as the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(channels // 2, 1)
        self.theta = nn.Conv1d(channels, inner, 1)
        self.phi = nn.Conv1d(channels, inner, 1)
        self.g = nn.Conv1d(channels, inner, 1)
        self.out = nn.Sequential(nn.Conv1d(inner, channels, 1), nn.BatchNorm1d(channels))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, D, T) -> (B, D, T)`` (channels first, as Conv1d wants)."""
        theta = self.theta(x).transpose(1, 2)  # (B, T, D/2)
        affinity = torch.bmm(theta, self.phi(x)) / x.shape[2]  # (B, T, T), / T as in the code
        y = torch.bmm(affinity, self.g(x).transpose(1, 2)).transpose(1, 2)  # (B, D/2, T)
        return self.out(y) + x


class MultiScaleTemporal(nn.Module):
    """MTN: dilated-convolution pyramid + non-local branch, fused and added to the input."""

    def __init__(self, dim: int, branch: int) -> None:
        super().__init__()
        self.dilated = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(dim, branch, 3, padding=d, dilation=d), nn.ReLU(), nn.BatchNorm1d(branch)
            )
            for d in (1, 2, 4)
        )
        self.reduce = nn.Sequential(nn.Conv1d(dim, branch, 1, bias=False), nn.ReLU())
        self.non_local = NonLocal1d(branch)
        self.fuse = nn.Sequential(
            nn.Conv1d(4 * branch, dim, 3, padding=1, bias=False), nn.ReLU(), nn.BatchNorm1d(dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, D) -> (B, T, D)``."""
        h = x.transpose(1, 2)  # (B, D, T)
        pyramid = [conv(h) for conv in self.dilated]  # 3 x (B, branch, T)
        local = self.non_local(self.reduce(h))  # (B, branch, T)
        stacked = torch.cat([*pyramid, local], dim=1)  # (B, 4*branch, T)
        # self.fuse(stacked), its convolution through conv1d (bf16 training: conv.py says why)
        fused = self.fuse[1:](conv1d(self.fuse[0], stacked))  # (B, D, T)
        return (fused + h).transpose(1, 2)


@register_detector("rtfm", params=RtfmParams)
class Rtfm(Detector):
    """MTN + snippet classifier trained with top-k feature-magnitude selection."""

    sampler: ClassVar[str] = "balanced"
    feature_ndim: ClassVar[int] = 1
    example_feature_shape: ClassVar[tuple[int, ...]] = (32,)
    # The zero-initialised non-local gate blocks gradients to the block's inner convolutions on the
    # first step; the contract test checks one step, so it builds the block open.
    example_params: ClassVar[dict] = {"branch_channels": 8, "non_local_zero_init": False}
    # The code's defaults (option.py, main.py): Adam lr 1e-3 (constant), weight decay 5e-3,
    # 32 + 32 videos per step, 15000 steps.
    # Every crop of a video inside one sample, as the code trains (crop_mode inside).
    train_defaults: ClassVar[dict] = {
        "optim": {"name": "adam", "lr": 1.0e-3, "weight_decay": 5.0e-3},
        "sampler": {"batch_per_class": 32},
        "crop_mode": "inside",
        "iterations": 15000,
    }

    def __init__(
        self, feature_shape: tuple[int, ...], params: RtfmParams, n_classes: int = 1
    ) -> None:
        super().__init__()
        self.params = params
        self.feature_shape = tuple(feature_shape)
        if params.crops_inside and len(self.feature_shape) < 2:
            shape = self.feature_shape
            raise ValueError(f"rtfm: crops_inside needs feature_shape (C, *F), got {shape}")
        snippet_shape = self.feature_shape[1:] if params.crops_inside else self.feature_shape
        dim = flat_dim(snippet_shape)
        self.mtn = MultiScaleTemporal(dim, params.branch_channels)
        self.fc1, self.fc2, self.fc3 = nn.Linear(dim, 512), nn.Linear(512, 128), nn.Linear(128, 1)
        self.drop = nn.Dropout(params.dropout)
        for module in self.modules():  # the code's weight_init: Xavier-uniform weights, zero biases
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if params.non_local_zero_init:  # as in the code and Wang et al.: start as the identity
            nn.init.zeros_(self.mtn.non_local.out[1].weight)

    def _crops(self, features: Tensor) -> Tensor:
        """``(B, T, *F)`` -> ``(B, C, T, D)``; ``C = 1`` unless crops are inside the features."""
        B, T = features.shape[:2]
        if self.params.crops_inside and features.dim() == 2 + len(self.feature_shape):
            return features.reshape(B, T, features.shape[2], -1).transpose(1, 2)
        return features.reshape(B, T, -1).unsqueeze(1)

    def explain(self, features: Tensor) -> RtfmOutputs:
        """``(B, T, *F)`` -> crop-averaged scores ``(B, T)``, snippet features ``(B, C, T, D)``."""
        x = self._crops(features)
        B, C, T, D = x.shape
        feats = self.drop(self.mtn(x.reshape(B * C, T, D)))  # (B*C, T, D); magnitudes see dropout
        h = self.drop(F.relu(self.fc1(feats)))
        h = self.drop(F.relu(self.fc2(h)))
        scores = torch.sigmoid(self.fc3(h)).reshape(B, C, T).mean(1)  # (B, T), averaged over crops
        return RtfmOutputs(scores, feats.reshape(B, C, T, D))

    def forward(self, features: Tensor) -> Tensor:
        """``(B, T, *F) -> (B, T)`` snippet anomaly scores in ``[0, 1]``."""
        return self.explain(features).scores

    def magnitudes(self, features: Tensor) -> Tensor:
        """Crop-averaged magnitudes ``||x_t||_2`` of the MTN output: ``(B, T, *F) -> (B, T)``."""
        return self.explain(features).features.norm(dim=3).mean(1)

    def _top_k(self, magnitudes: Tensor) -> Tensor:
        """Indices ``(V, k)`` of the k largest magnitudes, through a dropout mask in training."""
        k = min(self.params.k, magnitudes.shape[1])
        if self.params.magnitude_dropout:
            magnitudes = self.drop(torch.ones_like(magnitudes)) * magnitudes
        return magnitudes.topk(k, dim=1).indices

    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """BCE on top-k scores + alpha * magnitude loss + smoothness + sparsity (``train.py``)."""
        p = self.params
        scores, feats = self.explain(batch.features)  # (B, T), (B, C, T, D)
        half = balanced_half(batch.labels, "rtfm")
        idx = self._top_k(feats.norm(dim=3).mean(1))  # (B, k), chosen on crop-averaged magnitudes
        top_scores = scores.gather(1, idx).mean(1)  # (B,)
        bce = F.binary_cross_entropy(top_scores, batch.labels.to(scores.dtype))

        gather_idx = idx[:, None, :, None].expand(-1, feats.shape[1], -1, feats.shape[3])
        top_feats = feats.gather(2, gather_idx)  # (B, C, k, D), same snippets for every crop
        normal, abnormal = top_feats[:half], top_feats[half:]
        if p.magnitude_loss == "code":
            d_abn = torch.abs(p.margin - abnormal.mean(2).norm(dim=-1))  # (B/2, C)
            d_nor = normal.mean(2).norm(dim=-1)
            magnitude = ((d_abn + d_nor) ** 2).mean()
        else:
            d_abn = abnormal.norm(dim=-1).mean(2).mean(1)  # mean top-k magnitude over crops: (B/2,)
            d_nor = normal.norm(dim=-1).mean(2).mean(1)
            magnitude = F.relu(p.margin - d_abn + d_nor).mean()

        abn_scores = scores[half:]  # (B/2, T)
        if p.smooth_across_videos:
            flat = abn_scores.reshape(-1)
            smooth = ((flat[1:] - flat[:-1]) ** 2).sum()
        else:
            smooth = ((abn_scores[:, 1:] - abn_scores[:, :-1]) ** 2).sum(1).mean()
        if p.sparsity_norm == "l2":
            sparse = abn_scores.reshape(-1).norm()
        else:
            sparse = abn_scores.sum(1).mean()
        total = bce + p.alpha * magnitude + p.lambda_smooth * smooth + p.lambda_sparse * sparse
        return {
            "loss": total,
            "bce": bce.detach(),
            "magnitude": magnitude.detach(),
            "smooth": smooth.detach(),
            "sparse": sparse.detach(),
        }

    @torch.no_grad()
    def score_video(self, features: Tensor) -> Tensor:
        """``(N, *F)`` one crop, or ``(N, C, *F)`` with crops (averaged) -> ``(N,)``."""
        if self.params.crops_inside and features.dim() == len(self.feature_shape):
            features = features.unsqueeze(1)  # one crop given: (N, *F) -> (N, 1, *F)
        return self.forward(features.unsqueeze(0)).squeeze(0)


# ---------------------------------------------------------------------------- public weights
# The public code's ``Model`` state-dict names -> this module's (prefixes; the rest is the layer's
# own parameter or buffer name). ``Aggregate`` is the MTN; its non-local ``W`` is our ``out``.
PUBLIC_CODE_PREFIXES: tuple[tuple[str, str], ...] = (
    ("Aggregate.conv_1.", "mtn.dilated.0."),  # dilation 1
    ("Aggregate.conv_2.", "mtn.dilated.1."),  # dilation 2
    ("Aggregate.conv_3.", "mtn.dilated.2."),  # dilation 4
    ("Aggregate.conv_4.", "mtn.reduce."),
    ("Aggregate.conv_5.", "mtn.fuse."),
    ("Aggregate.non_local.theta.", "mtn.non_local.theta."),
    ("Aggregate.non_local.phi.", "mtn.non_local.phi."),
    ("Aggregate.non_local.g.", "mtn.non_local.g."),
    ("Aggregate.non_local.W.", "mtn.non_local.out."),
    ("fc1.", "fc1."),
    ("fc2.", "fc2."),
    ("fc3.", "fc3."),
)


def public_code_key(name: str) -> str | None:
    """The wsvad name of a public RTFM ``Model`` state-dict key (``None``: no such layer here)."""
    for theirs, ours in PUBLIC_CODE_PREFIXES:
        if name.startswith(theirs):
            return ours + name[len(theirs) :]
    return None


def state_from_public_code(public: dict[str, Tensor], detector: Rtfm) -> dict[str, Tensor]:
    """Map a state dict of the public code's ``Model(n_features, batch_size)`` (what its
    ``main.py`` saves with ``torch.save(model.state_dict(), ...)``) onto ``detector``.

    Every key must map and every detector key must be filled with the same shape; otherwise a
    ``ValueError`` lists the unexpected keys, the missing ones and the shape mismatches.
    """
    expected = detector.state_dict()
    mapped: dict[str, Tensor] = {}
    unexpected, wrong_shape, seen = [], [], set()
    for name, value in public.items():
        ours = public_code_key(name)
        if ours is None or ours not in expected:
            unexpected.append(name)
            continue
        seen.add(ours)
        if not isinstance(value, Tensor) or tuple(value.shape) != tuple(expected[ours].shape):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            wrong_shape.append(f"{name} {shape} (model {ours} {tuple(expected[ours].shape)})")
        else:
            mapped[ours] = value.to(expected[ours].dtype)
    theirs = {ours: theirs for theirs, ours in PUBLIC_CODE_PREFIXES}
    missing = [_public_name(key, theirs) for key in expected if key not in seen]
    problems = [
        f"{label}: {', '.join(items)}"
        for label, items in (
            ("unexpected keys", unexpected),
            ("missing keys", missing),
            ("wrong shapes", wrong_shape),
        )
        if items
    ]
    if problems:
        raise ValueError(
            "not a public RTFM Model state dict for this store; " + "; ".join(problems)
        )
    return mapped


def _public_name(key: str, theirs: dict[str, str]) -> str:
    """The public code's name of one of our keys (for error messages)."""
    for ours, public in theirs.items():
        if key.startswith(ours):
            return public + key[len(ours) :]
    return key
