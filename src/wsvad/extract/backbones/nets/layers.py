"""TensorFlow-'SAME' padded 3D convolution and pooling, the building blocks of ports of TF models.

TF 'SAME' pads ``max((ceil(n / s) - 1) * s + k - n, 0)`` in total per axis and puts the odd pixel
on the right (end) side; PyTorch's ``padding=`` is symmetric. Where the two agree (stride 1 with an
odd kernel), the layers use PyTorch's built-in padding, which is free; elsewhere they pad
explicitly. Max pooling pads with -inf (TF ignores padded positions in a max), convolution with 0.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch, "mkldnn_convolution")
# oneDNN's fused conv/linear + post-op kernels (what torch.compile's CPU backend calls)
_FUSED = _MKLDNN and all(
    hasattr(torch.ops.mkldnn, op) for op in ("_convolution_pointwise", "_linear_pointwise")
)


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF 'SAME' for one axis of length ``size``."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pads(
    x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]
) -> list[tuple[int, int]]:
    return [same_pads(n, k, s) for n, k, s in zip(x.shape[-3:], kernel, stride, strict=True)]


def _static_symmetric(kernel: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...] | None:
    """The symmetric padding that equals 'SAME' for every input size, or None if there is none."""
    if all(s == 1 and k % 2 == 1 for k, s in zip(kernel, stride, strict=True)):
        return tuple((k - 1) // 2 for k in kernel)
    return None


def _flat(pads: list[tuple[int, int]]) -> tuple[int, ...]:
    # F.pad wants the last axis first: (W_before, W_after, H_before, H_after, T_before, T_after).
    return tuple(p for pair in reversed(pads) for p in pair)


class Unit3D(nn.Module):
    """Conv3d with the BatchNorm folded into its bias, then an optional ReLU.

    In eval mode ``bn(conv(x)) = conv(x) * a + b`` per channel, which folds exactly into the conv
    weights and bias when the weights are loaded (see ``weights.fold_batch_norm``). ``padding=None``
    is TF 'SAME'; a tuple is PyTorch's symmetric padding (for ports of PyTorch models).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        relu: bool = True,
        padding: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.static_padding = _static_symmetric(kernel, stride) if padding is None else padding
        self.pointwise = (
            kernel == (1, 1, 1) and stride == (1, 1, 1) and not any(self.static_padding or ())
        )
        self.conv = nn.Conv3d(
            in_channels, out_channels, kernel, stride, padding=self.static_padding or 0, bias=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.static_padding is None:
            x = F.pad(x, _flat(_pads(x, self.kernel, self.stride)))
        if _fused_bf16(x):
            return _fused_unit(self, x)
        if self.pointwise:
            y = _pointwise(x, self.conv.weight, self.conv.bias)
            return F.relu(y, inplace=True) if self.relu else y
        y = conv3d(x, self.conv, self.static_padding or (0, 0, 0))
        return F.relu(y, inplace=True) if self.relu else y


def _fused_bf16(x: torch.Tensor) -> bool:
    """bf16 autocast at inference on CPU with channels-last input: oneDNN's fused kernels apply."""
    return (
        _FUSED
        and x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and torch.is_inference_mode_enabled()
        and x.is_contiguous(memory_format=torch.channels_last_3d)
    )


def _fused_unit(unit: Unit3D, x: torch.Tensor) -> torch.Tensor:
    """The unit in bf16 with bias and ReLU inside oneDNN's kernel (its "post-op").

    A separate ReLU pass, and for 1x1x1 units the bias copy of ``addmm``, cost as much memory
    traffic as the bf16 arithmetic saves; fused, they are free. Same bf16 products and sums as the
    unfused path (tests/extract/test_backbone_layers.py compares the two).
    """
    weight, bias = _cast_weights(unit.conv, torch.bfloat16)
    x, attr = x.to(torch.bfloat16), "relu" if unit.relu else "none"
    if unit.pointwise:
        B, _, T, H, W = x.shape
        rows = x.permute(0, 2, 3, 4, 1).reshape(-1, x.shape[1])  # NDHWC memory: a view
        y = torch.ops.mkldnn._linear_pointwise(
            rows, weight.view(weight.shape[0], -1), bias, attr, [], ""
        )
        return y.view(B, T, H, W, -1).permute(0, 4, 1, 2, 3)
    padding = list(unit.static_padding or (0, 0, 0))
    stride = list(unit.conv.stride)
    return torch.ops.mkldnn._convolution_pointwise(
        x, weight, bias, padding, stride, [1, 1, 1], 1, attr, [], ""
    )


def conv3d(x: torch.Tensor, conv: nn.Conv3d, padding: tuple[int, ...]) -> torch.Tensor:
    """``conv(x)`` with explicit ``padding``; channels-last CPU input goes straight to oneDNN.

    conv3d's own dispatch sends small batches to an im2col path that is ~2x slower on CPU and
    returns NCDHW, which would then slow every following layer; oneDNN keeps NDHWC.
    """
    if x.is_contiguous(memory_format=torch.channels_last_3d) and x.device.type == "cpu" and _MKLDNN:
        weight, bias = conv.weight, conv.bias
        if torch.is_autocast_enabled("cpu"):
            # autocast has no rule for mkldnn_convolution (it would run in fp32): cast as autocast
            # casts F.conv3d, so bf16 runs oneDNN's native bf16 kernels on the whole network
            dtype = torch.get_autocast_dtype("cpu")
            x, (weight, bias) = x.to(dtype), _cast_weights(conv, dtype)
        return torch.mkldnn_convolution(x, weight, bias, padding, conv.stride, (1, 1, 1), 1)
    return F.conv3d(x, conv.weight, conv.bias, conv.stride, padding)


def _cast_weights(conv: nn.Conv3d, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``conv``'s weight (channels-last, as oneDNN reads it beside channels-last input) and bias in
    ``dtype``, cast once per set of weights under inference mode instead of on every call: the
    per-call cast and the weight's layout copy were a tenth of the bf16 forward. The key holds the
    tensors' version counters, so weights loaded or changed in place afterwards are cast again."""
    w, b = conv.weight, conv.bias
    if not torch.is_inference_mode_enabled():
        return w.to(dtype), b.to(dtype)
    key = (dtype, w.data_ptr(), w._version, b.data_ptr(), b._version)
    cached = conv.__dict__.get("_cast_cache")
    if cached is None or cached[0] != key:
        cast = w.to(dtype).contiguous(memory_format=torch.channels_last_3d), b.to(dtype)
        conv.__dict__["_cast_cache"] = cached = (key, cast)
    return cached[1]


def _pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 1x1x1 convolution as one matrix product, in the memory layout of ``x``.

    PyTorch's conv3d sends small 1x1x1 convolutions to its slow im2col path or reorders the data for
    oneDNN; a GEMM over the channel axis does the same arithmetic without either.
    """
    w2d = weight.view(weight.shape[0], -1)  # (O, I)
    if x.is_contiguous(memory_format=torch.channels_last_3d):
        # NDHWC in memory: the permuted view is contiguous: one (B*T*H*W, I) x (I, O) product.
        return F.linear(x.permute(0, 2, 3, 4, 1), w2d, bias).permute(0, 4, 1, 2, 3)
    B, _, T, H, W = x.shape
    y = torch.baddbmm(bias.view(1, -1, 1), w2d.expand(B, -1, -1), x.reshape(B, x.shape[1], -1))
    return y.view(B, -1, T, H, W)  # (B, O, T*H*W) -> (B, O, T, H, W)


def max_pool_same(
    x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]
) -> torch.Tensor:
    """3D max pooling with TF 'SAME' padding (padded positions never win).

    CPU autocast runs max_pool3d in fp32, which cast every bf16 activation to fp32 and back (a
    quarter of the bf16 forward went to those copies); a maximum is exact in any dtype, so the
    pooling runs in the input's own dtype. (CUDA autocast leaves pooling alone.)
    """
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return _max_pool_same(x, kernel, stride)
    return _max_pool_same(x, kernel, stride)


def _max_pool_same(
    x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]
) -> torch.Tensor:
    pads = _pads(x, kernel, stride)
    # PyTorch pads max pooling with -inf itself, but only symmetrically and at most k // 2.
    if all(a == b and a <= k // 2 for (a, b), k in zip(pads, kernel, strict=True)):
        return F.max_pool3d(x, kernel, stride, padding=tuple(a for a, _ in pads))
    # Padding only at the end is what ceil_mode does: the last window hangs over the edge and only
    # sees real values. This keeps the channels-last layout that an explicit F.pad would lose.
    if all(a == 0 for a, _ in pads):
        return F.max_pool3d(x, kernel, stride, ceil_mode=True)
    return F.max_pool3d(F.pad(x, _flat(pads), value=float("-inf")), kernel, stride)
