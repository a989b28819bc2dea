"""conv1d: the module itself in fp32; under CPU bf16 autocast the same output and input gradient,
and a weight gradient equal to the exact one within bf16 rounding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wsvad.detectors.conv import conv1d


def _conv(dilation: int, bias: bool) -> nn.Conv1d:
    torch.manual_seed(0)
    return nn.Conv1d(6, 5, 3, padding=dilation, dilation=dilation, bias=bias)


def _grads(conv: nn.Conv1d, x: torch.Tensor, weights: torch.Tensor, run) -> list[torch.Tensor]:
    conv.zero_grad()
    x.grad = None
    (run().float() * weights).sum().backward()
    grads = [x.grad, conv.weight.grad] + ([] if conv.bias is None else [conv.bias.grad])
    return [g.clone() for g in grads]


def test_fp32_is_the_module():
    conv = _conv(2, True)
    x = torch.randn(3, 6, 9, requires_grad=True)
    weights = torch.randn(3, 5, 9)
    assert torch.equal(conv1d(conv, x), conv(x))
    got = _grads(conv, x, weights, lambda: conv1d(conv, x))
    want = _grads(conv, x, weights, lambda: conv(x))
    assert all(torch.equal(g, w) for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize(("dilation", "bias"), [(1, False), (2, True), (4, True)])
def test_bf16_weight_gradient_is_the_exact_one_within_bf16_rounding(dilation, bias):
    conv = _conv(dilation, bias)
    x = torch.randn(3, 6, 9, requires_grad=True)
    weights = torch.randn(3, 5, 9)

    def ours():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return conv1d(conv, x)

    def module():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return conv(x)

    assert torch.equal(ours(), module())  # the same oneDNN forward
    got = _grads(conv, x, weights, ours)
    want = _grads(conv, x, weights, module)
    assert torch.equal(got[0], want[0])  # and the same input gradient
    # the exact weight and bias gradients: float64 on the bf16-rounded inputs the products saw
    exact = nn.Conv1d(6, 5, 3, padding=dilation, dilation=dilation, bias=bias).double()
    with torch.no_grad():
        exact.weight.copy_(conv.weight.bfloat16().double())
        if bias:
            exact.bias.copy_(conv.bias.bfloat16().double())
    out = exact(x.detach().bfloat16().double())
    (out * weights.double()).sum().backward()
    exact_grads = [exact.weight.grad] + ([exact.bias.grad] if bias else [])
    for g, e in zip(got[1:], exact_grads, strict=True):
        torch.testing.assert_close(g.double(), e, rtol=0, atol=1e-2 * float(e.abs().max()))


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv1d(4, 4, 3, stride=2, padding=1),
        nn.Conv1d(4, 4, 3, padding=1, groups=2),
        nn.Conv1d(4, 4, 3, padding="same"),
    ],
    ids=["stride", "groups", "padding-string"],
)
def test_bf16_refuses_what_the_product_does_not_compute(
    conv,
):  # (so under autocast: not the module)
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(ValueError) as caught:
        conv1d(conv, torch.randn(1, 4, 8))
    assert str(caught.value) == "conv1d: stride 1, one group and numeric padding only"


def test_bf16_products_and_a_frozen_layer():
    conv = _conv(2, True)
    x = torch.randn(3, 6, 9, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv1d(conv, x)
    # what the backward's products read: the input and the weight in bf16
    assert [t.dtype for t in out.grad_fn.saved_tensors] == [torch.bfloat16, torch.bfloat16]
    # a frozen layer still passes the input its gradient, the module's
    conv.requires_grad_(False)
    weights = torch.randn(3, 5, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (conv1d(conv, x).float() * weights).sum().backward()
    got, x.grad = x.grad.clone(), None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (conv(x).float() * weights).sum().backward()
    assert torch.equal(got, x.grad)
