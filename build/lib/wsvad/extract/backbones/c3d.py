"""C3D fc6 features (Tran et al., ICCV 2015) with the input convention of Sultani et al. (CVPR
2018): frames resized to 171x128 (w x h), a centre (or 10-) crop of 112, 16-frame snippets, the
Sports-1M mean subtracted, fc6 (4096-d) after its ReLU by default.

Weights are not on PyPI. ``weights`` must point to the widely shared PyTorch conversion of the
Sports-1M Caffe model: a state dict with keys ``conv1.weight``, ``conv1.bias``, ..., ``conv5b.*``,
``fc6.*`` (``fc7``/``fc8`` may be present and are ignored), e.g. ``c3d.pickle`` linked from the
README of https://github.com/DavideA/c3d-pytorch (a ``torch.save`` file despite its name; it is
read with ``weights_only=True``, so no code in it runs).

Choices where the sources are vague: the Caffe model was trained on BGR frames minus a per-pixel
mean cube; like most PyTorch ports we subtract its per-channel means (BGR 90.25, 97.66, 101.41),
which the cube averages to. Caffe's ``fc6-1`` blob, which C3D's extractor dumps, is rectified in
place by ``relu6``, so the features Sultani et al. used are post-ReLU: hence ``relu=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wsvad.errors import WsvadError
from wsvad.extract.backbones.registry import BackboneSpec, register_backbone
from wsvad.extract.backbones.weights import check_state_dict, load_state_dict_file, sha256_of

if TYPE_CHECKING:
    import torch

BGR_MEAN = np.array([90.25164677, 97.65700354, 101.40833461], dtype=np.float32)
WHERE_TO_GET = (
    "c3d: no weights given; pass the Sports-1M C3D PyTorch state dict (keys conv1.weight ... "
    "fc6.weight) as --weights PATH (backbone option weights=PATH); most users get it as "
    "'c3d.pickle' from the README of https://github.com/DavideA/c3d-pytorch"
)


def expected_keys() -> dict[str, tuple[int, ...]]:
    """Key -> shape of everything fc6 features need from the shared state dict."""
    from wsvad.extract.backbones.nets.c3d import CONVS, FC6_IN, FC6_OUT

    keys: dict[str, tuple[int, ...]] = {}
    for name, cin, cout, _ in CONVS:
        keys[f"{name}.weight"], keys[f"{name}.bias"] = (cout, cin, 3, 3, 3), (cout,)
    keys["fc6.weight"], keys["fc6.bias"] = (FC6_OUT, FC6_IN), (FC6_OUT,)
    return keys


def prepare_c3d(clips: np.ndarray) -> np.ndarray:
    """uint8 ``[B, L, S, S, 3]`` RGB -> float32 ``[B, 3, L, S, S]``, BGR minus Sports-1M means."""
    if clips.dtype != np.uint8 or clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(f"prepare expects uint8 [B, L, S, S, 3], got {clips.dtype} {clips.shape}")
    out = clips[..., ::-1].astype(np.float32)  # RGB -> BGR, channels last
    out -= BGR_MEAN
    return out.transpose(0, 4, 1, 2, 3)  # (B, L, S, S, 3) -> (B, 3, L, S, S), a channels-last view


def c3d_spec(weights: str | Path | None = None, relu: bool = True) -> BackboneSpec:
    return BackboneSpec(
        name="c3d",
        feature_shape=(4096,),
        snippet_len=16,
        crop_size=112,
        resize="171x128",
        prepare=prepare_c3d,
        weights_sha256=sha256_of(Path(weights)) if weights is not None else None,
        description="C3D Sports-1M fc6 (Sultani et al. convention); needs --weights",
        options={"relu": relu},
    )


@register_backbone("c3d", spec=c3d_spec)
def build_c3d(
    device: str = "cpu", weights: str | Path | None = None, relu: bool = True
) -> torch.nn.Module:
    """C3D up to fc6 in eval mode: ``[B, 3, 16, 112, 112] -> [B, 4096]``."""
    import torch

    from wsvad.extract.backbones.nets.c3d import C3D

    if weights is None:
        raise WsvadError(WHERE_TO_GET)
    state = check_state_dict(Path(weights), load_state_dict_file(Path(weights)), expected_keys())
    with torch.device("meta"):
        model = C3D(relu=relu)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False).to(device)
