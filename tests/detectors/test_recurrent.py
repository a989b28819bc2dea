"""lstm_sequence equals nn.LSTM: outputs and every parameter's gradient; lstm_last picks the
module in fp32 and lstm_sequence under CPU autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wsvad.detectors.recurrent import lstm_last, lstm_sequence


@pytest.mark.parametrize(("steps", "bias"), [(1, True), (7, True), (5, False)])
def test_outputs_and_gradients_equal_the_module(steps, bias):
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 4, batch_first=True, bias=bias)
    x = torch.randn(3, steps, 6)
    weights = torch.randn(3, steps, 4)  # a loss that weighs every step and unit differently

    def grads(outputs):
        lstm.zero_grad()
        (outputs * weights).sum().backward()
        return [p.grad.clone() for p in lstm.parameters()]

    expected = lstm(x)[0]
    want = grads(expected)
    got_out = lstm_sequence(lstm, x)
    got = grads(got_out)
    torch.testing.assert_close(got_out, expected, rtol=1e-5, atol=1e-6)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6)


def test_float64_stays_float64():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 2, batch_first=True).double()
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    out = lstm_sequence(lstm, x)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, lstm(x)[0], rtol=1e-12, atol=1e-12)


def test_bf16_autocast_keeps_the_cell_in_float32_and_close_to_fp32():
    torch.manual_seed(0)
    lstm = nn.LSTM(64, 32, batch_first=True)
    x = torch.randn(4, 9, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = lstm_sequence(lstm, x)
    assert low.dtype == torch.float32
    # the specification: products in bf16 (autocast), gates and cell state in float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gates_x = torch.nn.functional.linear(
            x, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0
        )
        h = c = torch.zeros(4, 32)
        for t in range(9):
            gates = gates_x[:, t] + torch.nn.functional.linear(h, lstm.weight_hh_l0)
            i, f, g, o = gates.float().chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
    torch.testing.assert_close(low[:, -1], h, rtol=0, atol=0)
    exact = lstm(x)[0]
    cosine = torch.nn.functional.cosine_similarity(low.flatten(), exact.flatten(), dim=0)
    assert 0.999 < cosine.item() < 1.0  # the products really ran in bf16


@pytest.mark.parametrize(
    "kwargs", [{"num_layers": 2}, {"bidirectional": True}, {"batch_first": False}, {"proj_size": 2}]
)
def test_other_lstm_layouts_are_refused(kwargs):
    lstm = nn.LSTM(6, 4, **{"batch_first": True, **kwargs})
    with pytest.raises(ValueError) as caught:
        lstm_sequence(lstm, torch.zeros(1, 2, 6))
    assert str(caught.value) == (
        "lstm_sequence computes one-layer, one-direction, batch_first LSTMs without projection"
    )


def test_lstm_last_is_the_module_in_fp32_and_the_sequence_under_bf16_autocast():
    torch.manual_seed(0)
    lstm = nn.LSTM(16, 8, batch_first=True)
    x = torch.randn(5, 7, 16)
    _, (h, _) = lstm(x)
    assert torch.equal(lstm_last(lstm, x), h[-1])  # fp32: the fused kernel, results as before
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = lstm_last(lstm, x)
        want = lstm_sequence(lstm, x)[:, -1]
        module = lstm(x)[1][0][-1]
    assert torch.equal(low, want) and not torch.equal(low, module.float())
    torch.testing.assert_close(low, h[-1], rtol=0, atol=3e-2)  # bf16 products, float32 cell
    # the parameters' gradients follow the fp32 ones within bf16 rounding
    lstm.zero_grad()
    h[-1].sum().backward()
    want_grads = [p.grad.clone() for p in lstm.parameters()]
    lstm.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lstm_last(lstm, x).sum().backward()
    for got, w in zip((p.grad for p in lstm.parameters()), want_grads, strict=True):
        torch.testing.assert_close(got, w, rtol=0, atol=0.05 * float(w.abs().max()))
