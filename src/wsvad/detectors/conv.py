"""An ``nn.Conv1d`` whose bf16 weight gradient on CPU is one matrix product.

Not a detector (``detectors/__init__.py`` lists those); torch only, no I/O.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv1d(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """``conv(x)``; under CPU autocast (bf16 training) the weight gradient is computed as one
    matrix product of the output gradient with the input's taps.

    Why: oneDNN's bf16 weight gradient of RTFM's fusing convolution (2,048 -> 1,024 channels,
    kernel 3, 64 x 32 positions) runs at a third of its forward rate: forward + backward 350 ms on
    two threads, 254 ms this way; the forward and the input gradient stay oneDNN's. RTFM's
    narrower dilated convolutions gain nothing (56 vs 60 ms) and keep the module. In fp32 and on
    other devices this is the module itself, so fp32 results are unchanged.
    """
    if not (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")):
        return conv(x)
    if conv.stride != (1,) or conv.groups != 1 or not isinstance(conv.padding, tuple):
        raise ValueError("conv1d: stride 1, one group and numeric padding only")
    low = torch.get_autocast_dtype("cpu")
    # the input and the weight in bf16, as saved for the backward's products; the bias is cast by
    # autocast inside F.conv1d and gets its float32 gradient from autograd
    return _WeightGradAsProduct.apply(
        x.to(low), conv.weight.to(low), conv.bias, conv.dilation[0], conv.padding[0]
    )


class _WeightGradAsProduct(torch.autograd.Function):
    """``F.conv1d``'s forward and input gradient; the weight gradient as
    ``dY (out, B*T) @ taps (B*T, C*k)``."""

    @staticmethod
    def forward(ctx, x, weight, bias, dilation: int, padding: int):
        ctx.save_for_backward(x, weight)
        ctx.dilation, ctx.padding = dilation, padding
        return F.conv1d(x, weight, bias, padding=padding, dilation=dilation)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        d, pad = ctx.dilation, ctx.padding
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv1d_input(x.shape, weight, grad_out, padding=pad, dilation=d)
        if ctx.needs_input_grad[1]:
            B, C, _ = x.shape
            out, _, k = weight.shape
            T = grad_out.shape[2]
            padded = F.pad(x, (pad, pad))
            # taps[b, t, c, i] = padded[b, c, t + i d]: the input the kernel's tap i sees at t
            taps = torch.stack([padded[:, :, i * d : i * d + T] for i in range(k)], dim=3)
            taps = taps.permute(0, 2, 1, 3).reshape(B * T, C * k)
            rows = grad_out.transpose(1, 2).reshape(B * T, out)
            grad_w = (rows.t() @ taps).view(out, C, k)
        if ctx.needs_input_grad[2]:  # False without a bias
            grad_b = grad_out.sum((0, 2))
        return grad_x, grad_w, grad_b, None, None
