"""TF-'SAME' padded layers against an explicit reference (pad as TF does, then a VALID op)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wsvad.extract.backbones.nets.layers import Unit3D, max_pool_same, same_pads


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (224, 7, 2, (2, 3)),
        (16, 7, 2, (2, 3)),
        (112, 3, 2, (0, 1)),
        (7, 3, 2, (1, 1)),
        (8, 3, 2, (0, 1)),
        (4, 2, 2, (0, 0)),
        (5, 2, 2, (0, 1)),
        (9, 3, 1, (1, 1)),
        (6, 4, 1, (1, 2)),
        (3, 1, 1, (0, 0)),
        (2, 7, 1, (3, 3)),
    ],
)
def test_same_pads_follow_tensorflow(size, kernel, stride, expected):
    assert same_pads(size, kernel, stride) == expected
    before, after = expected
    # SAME output size
    assert (size + before + after - kernel) // stride + 1 == math.ceil(size / stride)


def _explicit(x, kernel, stride, value):
    pads = [same_pads(n, k, s) for n, k, s in zip(x.shape[-3:], kernel, stride, strict=True)]
    flat = [p for pair in reversed(pads) for p in pair]
    return F.pad(x, flat, value=value)


@pytest.mark.parametrize("shape", [(1, 2, 8, 12, 12), (2, 3, 7, 11, 10), (1, 1, 5, 9, 6)])
@pytest.mark.parametrize(
    ("kernel", "stride"),
    [
        ((3, 3, 3), (1, 1, 1)),
        ((1, 3, 3), (1, 2, 2)),
        ((3, 3, 3), (2, 2, 2)),
        ((2, 2, 2), (2, 2, 2)),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_same_ignores_padding(shape, kernel, stride, channels_last):
    # All-negative values: a zero-padded pool would return 0 at the borders, TF's never does.
    x = -1 - torch.rand(shape, generator=torch.Generator().manual_seed(1))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    expected = F.max_pool3d(_explicit(x, kernel, stride, float("-inf")), kernel, stride)
    out = max_pool_same(x, kernel, stride)
    assert out.shape == expected.shape
    assert out.shape[-3:] == tuple(
        math.ceil(n / s) for n, s in zip(shape[-3:], stride, strict=True)
    )
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    assert out.max() < -1


@pytest.mark.parametrize(
    ("kernel", "stride"),
    [
        ((7, 7, 7), (2, 2, 2)),
        ((3, 3, 3), (1, 1, 1)),
        ((1, 1, 1), (1, 1, 1)),
        ((2, 4, 4), (1, 2, 2)),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_unit3d_is_a_same_padded_conv(kernel, stride, channels_last):
    torch.manual_seed(0)
    unit = Unit3D(3, 5, kernel, stride, relu=False).eval()
    x = torch.randn(2, 3, 9, 13, 12)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    expected = F.conv3d(_explicit(x, kernel, stride, 0.0), unit.conv.weight, unit.conv.bias, stride)
    with torch.inference_mode():
        out = unit(x)
        relu = Unit3D(3, 5, kernel, stride, relu=True).eval()
        relu.load_state_dict(unit.state_dict())
        out_relu = relu(x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_relu, expected.clamp_min(0), atol=1e-5, rtol=1e-5)


def test_bf16_autocast_runs_the_onednn_convolutions_in_bf16():
    # autocast has no rule for torch.mkldnn_convolution: without the explicit cast the 3D
    # convolutions of I3D ran in fp32 under --precision bf16 and only the 1x1x1 ones got faster
    torch.manual_seed(0)
    unit = Unit3D(8, 16, kernel=(3, 3, 3)).eval()
    x = torch.randn(2, 8, 5, 9, 9).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        ref = unit(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = unit(x)
    assert ref.dtype == torch.float32 and low.dtype == torch.bfloat16
    expected = F.relu(
        F.conv3d(x.bfloat16(), unit.conv.weight.bfloat16(), unit.conv.bias.bfloat16(), 1, 1)
    )
    torch.testing.assert_close(low, expected, rtol=0.02, atol=0.02)
    cosine = F.cosine_similarity(low.float().flatten(), ref.flatten(), dim=0)
    assert 0.999 < cosine.item() < 1.0  # bf16 really rounds, and stays close to fp32


def _unfused_bf16(unit: Unit3D, x: torch.Tensor) -> torch.Tensor:
    """The unit computed step by step in bf16: 'SAME' pad, conv, bias, ReLU."""
    w, b = unit.conv.weight.bfloat16(), unit.conv.bias.bfloat16()
    y = F.conv3d(_explicit(x, unit.kernel, unit.stride, 0.0).bfloat16(), w, b, unit.stride)
    return y.clamp_min(0) if unit.relu else y


@pytest.mark.parametrize(
    ("kernel", "stride", "relu"),
    [
        ((1, 1, 1), (1, 1, 1), True),
        ((1, 1, 1), (1, 1, 1), False),
        ((3, 3, 3), (1, 1, 1), True),
        ((7, 7, 7), (2, 2, 2), True),
        ((2, 4, 4), (1, 2, 2), False),
    ],
)
def test_fused_bf16_unit_equals_the_unfused_bf16_computation(kernel, stride, relu):
    """Under bf16 autocast at inference the unit runs oneDNN's conv/linear with bias and ReLU fused
    (and its bf16 weights cached): the same bf16 result as the unfused steps, channels-last out."""
    torch.manual_seed(0)
    unit = Unit3D(16, 24, kernel, stride, relu=relu).eval()
    x = torch.randn(2, 16, 9, 13, 12).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = unit(x)
    assert out.dtype == torch.bfloat16
    assert out.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(out.float(), _unfused_bf16(unit, x).float(), rtol=0.02, atol=0.03)
    if relu:
        assert out.min() == 0
    else:
        assert out.min() < 0


def test_cached_bf16_weights_follow_new_weights():
    """The bf16 copy of a unit's weights is cast once; loading other weights casts again."""
    torch.manual_seed(0)
    unit, other = Unit3D(8, 8, (3, 3, 3)).eval(), Unit3D(8, 8, (3, 3, 3)).eval()
    x = torch.randn(1, 8, 4, 6, 6).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        first = unit(x)
        assert torch.equal(unit(x), first)
        with torch.no_grad():
            unit.load_state_dict(other.state_dict())
        second = unit(x)
        expected = other(x)
    assert not torch.equal(second, first)
    assert torch.equal(second, expected)


def test_max_pool_keeps_bf16_under_autocast():
    """autocast would run max_pool3d in fp32 (casting every activation there and back); a maximum is
    exact in bf16, so the pooled values are the bf16 input's own values, still bf16."""
    x = torch.randn(2, 4, 5, 9, 9).bfloat16().contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = max_pool_same(x, (3, 3, 3), (1, 1, 1))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, max_pool_same(x.float(), (3, 3, 3), (1, 1, 1)).bfloat16())
