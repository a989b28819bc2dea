"""The key map from the public RTFM code's ``Model`` state dict to wsvad's RTFM
(``state_from_public_code``, what ``wsvad import-model`` uses), checked by name on a small model.

The public names and shapes are those of ``Model(n_features=D)`` in github.com/tianyu0207/RTFM
(``model.py``: ``Aggregate`` with branch width 512, non-local ``W``, ``fc1``-``fc3``), written out
here rather than taken from the module's prefix table, so a wrong prefix fails.
"""

from __future__ import annotations

import pytest
import torch

from wsvad.detectors import build_detector
from wsvad.detectors.rtfm import state_from_public_code

D = 16  # the public code's n_features; its branch width is fixed at 512 (4 * 512 = 2048 fused)

# (public name, wsvad name, shape) for every entry of the public Model(n_features=D) state dict
PUBLIC_TO_OURS: list[tuple[str, str, tuple[int, ...]]] = [
    *[
        (f"Aggregate.conv_{i + 1}.{layer}", f"mtn.dilated.{i}.{layer}", shape)
        for i in range(3)
        for layer, shape in (
            ("0.weight", (512, D, 3)),
            ("0.bias", (512,)),
            ("2.weight", (512,)),
            ("2.bias", (512,)),
            ("2.running_mean", (512,)),
            ("2.running_var", (512,)),
            ("2.num_batches_tracked", ()),
        )
    ],
    ("Aggregate.conv_4.0.weight", "mtn.reduce.0.weight", (512, D, 1)),
    ("Aggregate.conv_5.0.weight", "mtn.fuse.0.weight", (D, 2048, 3)),
    ("Aggregate.conv_5.2.weight", "mtn.fuse.2.weight", (D,)),
    ("Aggregate.conv_5.2.bias", "mtn.fuse.2.bias", (D,)),
    ("Aggregate.conv_5.2.running_mean", "mtn.fuse.2.running_mean", (D,)),
    ("Aggregate.conv_5.2.running_var", "mtn.fuse.2.running_var", (D,)),
    ("Aggregate.conv_5.2.num_batches_tracked", "mtn.fuse.2.num_batches_tracked", ()),
    ("Aggregate.non_local.g.weight", "mtn.non_local.g.weight", (256, 512, 1)),
    ("Aggregate.non_local.g.bias", "mtn.non_local.g.bias", (256,)),
    ("Aggregate.non_local.W.0.weight", "mtn.non_local.out.0.weight", (512, 256, 1)),
    ("Aggregate.non_local.W.0.bias", "mtn.non_local.out.0.bias", (512,)),
    ("Aggregate.non_local.W.1.weight", "mtn.non_local.out.1.weight", (512,)),
    ("Aggregate.non_local.W.1.bias", "mtn.non_local.out.1.bias", (512,)),
    ("Aggregate.non_local.W.1.running_mean", "mtn.non_local.out.1.running_mean", (512,)),
    ("Aggregate.non_local.W.1.running_var", "mtn.non_local.out.1.running_var", (512,)),
    ("Aggregate.non_local.W.1.num_batches_tracked", "mtn.non_local.out.1.num_batches_tracked", ()),
    ("Aggregate.non_local.theta.weight", "mtn.non_local.theta.weight", (256, 512, 1)),
    ("Aggregate.non_local.theta.bias", "mtn.non_local.theta.bias", (256,)),
    ("Aggregate.non_local.phi.weight", "mtn.non_local.phi.weight", (256, 512, 1)),
    ("Aggregate.non_local.phi.bias", "mtn.non_local.phi.bias", (256,)),
    ("fc1.weight", "fc1.weight", (512, D)),
    ("fc1.bias", "fc1.bias", (512,)),
    ("fc2.weight", "fc2.weight", (128, 512)),
    ("fc2.bias", "fc2.bias", (128,)),
    ("fc3.weight", "fc3.weight", (1, 128)),
    ("fc3.bias", "fc3.bias", (1,)),
]


@pytest.fixture(scope="module")
def detector():
    return build_detector("rtfm", (D,), {})  # branch width 512, as the public code


def _public_state() -> dict[str, torch.Tensor]:
    """The public state dict, entry i filled with the value i (float64 floats: torch.save of a
    double model; int64 batch counters)."""
    state = {}
    for i, (name, _, shape) in enumerate(PUBLIC_TO_OURS):
        dtype = torch.int64 if name.endswith("num_batches_tracked") else torch.float64
        state[name] = torch.full(shape, i, dtype=dtype)
    return state


def test_every_public_key_maps_to_its_layer_with_the_models_dtype(detector):
    mapped = state_from_public_code(_public_state(), detector)
    expected = detector.state_dict()
    assert len(PUBLIC_TO_OURS) == len(expected) == 47
    assert sorted(mapped) == sorted(expected)
    for i, (name, ours, shape) in enumerate(PUBLIC_TO_OURS):
        assert tuple(expected[ours].shape) == shape, name
        assert mapped[ours].dtype == expected[ours].dtype, name  # float64 -> float32, int64 kept
        assert torch.equal(mapped[ours], torch.full(shape, i, dtype=expected[ours].dtype)), name
    detector.load_state_dict(mapped)  # strict: the map fills the model exactly


def test_wrong_keys_and_shapes_are_refused_with_every_mismatch_listed(detector):
    state = {"Aggregate.conv_6.0.weight": torch.zeros(3)}  # no such layer; listed first
    state.update(_public_state())
    del state["Aggregate.non_local.W.1.running_var"], state["fc3.bias"]
    state["fc3.scale"] = torch.zeros(1)  # a known layer, but no such parameter in it
    state["fc1.weight"] = torch.zeros(512, 8)  # features of another width
    state["fc2.bias"] = [0.0] * 128  # not a tensor
    with pytest.raises(ValueError) as err:
        state_from_public_code(state, detector)
    assert str(err.value) == (
        "not a public RTFM Model state dict for this store; "
        "unexpected keys: Aggregate.conv_6.0.weight, fc3.scale; "
        "missing keys: Aggregate.non_local.W.1.running_var, fc3.bias; "
        "wrong shapes: fc1.weight (512, 8) (model fc1.weight (512, 16)), "
        "fc2.bias list (model fc2.bias (128,))"
    )


def test_a_state_dict_missing_keys_only_is_refused(detector):
    state = _public_state()
    del state["Aggregate.conv_2.0.bias"]
    with pytest.raises(ValueError) as err:
        state_from_public_code(state, detector)
    assert str(err.value) == (
        "not a public RTFM Model state dict for this store; missing keys: Aggregate.conv_2.0.bias"
    )
