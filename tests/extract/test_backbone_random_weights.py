"""write_random_weights: seeded stand-in weights of a published key layout (benchmarks, tests)."""

from __future__ import annotations

import pytest
import torch

from wsvad.extract.backbones.weights import (
    check_state_dict,
    load_state_dict_file,
    write_random_weights,
)

LAYOUT = {
    "conv1.weight": (4, 3, 3, 3, 3),
    "conv1.bias": (4,),
    "bn1.running_var": (4,),
    "bn1.running_mean": (4,),
}


def test_random_weights_follow_the_layout_and_the_seed(tmp_path):
    path = write_random_weights(tmp_path / "w.safetensors", LAYOUT, seed=3)
    state = check_state_dict(
        path, load_state_dict_file(path), LAYOUT
    )  # the loader the backbones use
    assert {k: tuple(v.shape) for k, v in state.items()} == LAYOUT
    var = state["bn1.running_var"]
    assert bool(((var >= 0.5) & (var < 1.5)).all())  # positive: folding divides by sqrt(var)
    assert 0.002 < float(state["conv1.weight"].std()) < 0.02
    again = load_state_dict_file(
        write_random_weights(tmp_path / "again.safetensors", LAYOUT, seed=3)
    )
    other = load_state_dict_file(
        write_random_weights(tmp_path / "other.safetensors", LAYOUT, seed=4)
    )
    assert torch.equal(again["conv1.weight"], state["conv1.weight"])
    assert not torch.equal(other["conv1.weight"], state["conv1.weight"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "again.safetensors",
        "other.safetensors",
        "w.safetensors",
    ]


def test_random_weights_refuse_a_torch_save_name(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"w\.pth: random weights are written as safetensors; name the file \*\.safetensors",
    ):
        write_random_weights(tmp_path / "w.pth", LAYOUT)
