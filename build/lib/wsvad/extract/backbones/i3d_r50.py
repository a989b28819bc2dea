"""I3D-ResNet50 features (2048-d), the convention of the RTFM/MGFN released features: short side
256, 224 crops, 16-frame snippets, RGB scaled to [-1, 1], layer4 averaged over time and space.

Weights: ``weights`` must point to the commonly shared PyTorch checkpoint of the Kinetics-400 model
(``i3d_r50_kinetics.pth``, converted from the Caffe2 video-nonlocal-net release; see
https://github.com/Tushar-N/pytorch-resnet3d). Expected keys, each conv followed by its BatchNorm:

    conv1.weight (64, 3, 5, 7, 7); bn1.{weight, bias, running_mean, running_var}
    layer{1..4}.{i}.conv{1,2,3}.weight
    layer{1..4}.{i}.bn{1,2,3}.{weight, bias, running_mean, running_var}
    layer{1..4}.0.downsample.0.weight
    layer{1..4}.0.downsample.1.{weight, bias, running_mean, running_var}

``fc.*`` and ``num_batches_tracked`` are ignored; BatchNorm (eps 1e-5) is folded into the convs at
load. A ``{"state_dict": ...}`` wrapper and a DataParallel ``module.`` prefix are accepted.

Choices: the RTFM feature script scales frames to [-1, 1] although the Caffe2 model was trained with
mean 114.75 / std 57.375; we follow the released features, not the training recipe.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from wsvad.errors import WsvadError
from wsvad.extract.backbones.i3d import prepare_i3d
from wsvad.extract.backbones.registry import BackboneSpec, register_backbone
from wsvad.extract.backbones.weights import (
    check_state_dict,
    fold_batch_norm,
    load_state_dict_file,
    sha256_of,
)

if TYPE_CHECKING:
    import torch

BN_EPS = 1e-5  # torch.nn.BatchNorm3d's default, which the shared checkpoint was made with
WHERE_TO_GET = (
    "i3d_r50: no weights given; pass the Kinetics-400 I3D-ResNet50 PyTorch checkpoint as "
    "--weights PATH (backbone option weights=PATH); it is usually 'i3d_r50_kinetics.pth' from "
    "https://github.com/Tushar-N/pytorch-resnet3d"
)


def _bn_name(conv: str) -> str:
    """The BatchNorm that follows conv ``conv`` in the shared checkpoint's naming."""
    if conv.endswith("downsample"):
        return conv + ".1"
    head, _, last = conv.rpartition(".")
    return (head + "." if head else "") + last.replace("conv", "bn")


def _conv_name(conv: str) -> str:
    return conv + ".0" if conv.endswith("downsample") else conv


def _convs() -> dict[str, tuple[int, ...]]:
    """Our folded conv module name -> its weight shape (built on the meta device: costs nothing)."""
    import torch

    from wsvad.extract.backbones.nets.resnet3d import I3DResNet50

    with torch.device("meta"):
        net = I3DResNet50()
    return {
        name.removesuffix(".conv.weight"): tuple(p.shape)
        for name, p in net.state_dict().items()
        if name.endswith(".conv.weight")
    }


def expected_keys() -> dict[str, tuple[int, ...]]:
    keys: dict[str, tuple[int, ...]] = {}
    for conv, shape in _convs().items():
        keys[f"{_conv_name(conv)}.weight"] = shape
        for stat in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{_bn_name(conv)}.{stat}"] = (shape[0],)
    return keys


def fold_checkpoint(state: dict) -> dict:
    """Shared-checkpoint state (conv + BN) -> our folded state (conv with bias)."""
    import torch

    folded = {}
    for conv in _convs():
        bn = _bn_name(conv)
        beta, mean, var, gamma = (
            state[f"{bn}.{k}"].numpy() for k in ("bias", "running_mean", "running_var", "weight")
        )
        kernel = state[f"{_conv_name(conv)}.weight"].numpy()
        w, b = fold_batch_norm(kernel, beta, mean, var, BN_EPS, gamma=gamma)
        folded[f"{conv}.conv.weight"] = torch.from_numpy(w)
        folded[f"{conv}.conv.bias"] = torch.from_numpy(b)
    return folded


def i3d_r50_spec(weights: str | Path | None = None) -> BackboneSpec:
    return BackboneSpec(
        name="i3d_r50",
        feature_shape=(2048,),
        snippet_len=16,
        crop_size=224,
        resize="short256",
        prepare=prepare_i3d,  # RGB scaled to [-1, 1], as the RTFM feature script does
        weights_sha256=sha256_of(Path(weights)) if weights is not None else None,
        description="I3D-ResNet50 Kinetics-400, 2048-d (RTFM/MGFN convention); needs --weights",
        options={},
    )


@register_backbone("i3d_r50", spec=i3d_r50_spec)
def build_i3d_r50(device: str = "cpu", weights: str | Path | None = None) -> torch.nn.Module:
    """I3D-ResNet50 in eval mode: ``[B, 3, 16, 224, 224] -> [B, 2048]``."""
    import torch

    from wsvad.extract.backbones.nets.resnet3d import I3DResNet50

    if weights is None:
        raise WsvadError(WHERE_TO_GET)
    path = Path(weights)
    state = fold_checkpoint(check_state_dict(path, load_state_dict_file(path), expected_keys()))
    with torch.device("meta"):
        model = I3DResNet50()
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False).to(device)
