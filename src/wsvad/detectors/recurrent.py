"""An ``nn.LSTM``'s outputs computed as one input projection plus one small product per step.

Not a detector (``detectors/__init__.py`` lists those); torch only, no I/O.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def lstm_sequence(lstm: nn.LSTM, x: Tensor) -> Tensor:
    """Every hidden state of a one-layer, one-direction, ``batch_first`` LSTM started from zero:
    ``(B, T, n) -> (B, T, H)``, the same equations and parameters as ``lstm(x)[0]``.

    Why not call the module: under bf16 autocast oneDNN's fused LSTM runs its backward at fp32
    speed (joint's 7,168-input LSTM, 60 videos x 32 steps, forward + backward: 3.94 CPU s in bf16 vs
    4.09 in fp32). Here the input projection of all steps, 87 % of joint's LSTM arithmetic, is one
    matrix product that autocast runs in bf16 at twice the speed and whose backward skips the input
    (features need no gradient): 1.89 CPU s. The gates and the cell state stay float32, as in the
    fused kernel. In fp32 the result equals ``lstm(x)[0]`` within float32 rounding
    (tests/detectors/test_recurrent.py). Joint uses it; DAM goes through ``lstm_last``.
    """
    if lstm.num_layers != 1 or lstm.bidirectional or not lstm.batch_first or lstm.proj_size:
        raise ValueError(
            "lstm_sequence computes one-layer, one-direction, batch_first LSTMs without projection"
        )
    bias = lstm.bias_ih_l0 + lstm.bias_hh_l0 if lstm.bias else None
    gates_x = F.linear(x, lstm.weight_ih_l0, bias)  # (B, T, 4H): every step's input term at once
    # zero initial state, in the input's dtype: float32 features stay float32 under bf16 autocast
    h = c = x.new_zeros(x.shape[0], lstm.hidden_size)
    states = []
    # unbind, not gates_x[:, t]: the backward of T slices would zero-fill and add T full-size
    # gradients (joint: 32 x 31 MB a step); unbind's backward stacks the T pieces once
    steps = gates_x.unbind(1)
    for t, gates_t in enumerate(steps):
        # The zero state's product adds exact zeros to the gates and to the recurrent weights'
        # gradient, so it is skipped (DAM: 1 of 7 recurrent products), except in a one-step
        # sequence: there it gives those weights their zero gradient, as the module does, so an
        # optimizer treats them alike.
        skip = t == 0 and len(steps) > 1
        gates = gates_t if skip else gates_t + F.linear(h, lstm.weight_hh_l0)
        # PyTorch's gate order: input, forget, cell, output
        i, f, g, o = gates.to(x.dtype).chunk(4, dim=1)  # bf16 products, float32 gates
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        states.append(h)
    return torch.stack(states, dim=1)


def lstm_last(lstm: nn.LSTM, x: Tensor) -> Tensor:
    """The last hidden state ``(B, H)`` of a many-to-one LSTM (as ``lstm(x)[1][0][-1]``): the
    module itself, except under CPU autocast (bf16 training), where ``lstm_sequence`` runs.

    Why two ways: DAM's LSTMs see short sequences (7 steps of 1,024 per clip, 320 clips a batch).
    In fp32 oneDNN's fused kernel is the faster (1.31 vs 1.48 s forward + backward, one thread), and
    taking it keeps fp32 results exactly as before. Under bf16 autocast that kernel runs at fp32
    speed and computes a gradient for the input features, which need none: 0.76 s vs 0.65 s
    (``benchmarks/train.py --detectors dam --precision bf16``).
    """
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return lstm_sequence(lstm, x)[:, -1]
    _, (h, _) = lstm(x)
    return h[-1]
