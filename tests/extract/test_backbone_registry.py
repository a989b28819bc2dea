"""Every registered backbone: a cheap, consistent spec; misspelt options name the valid ones."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from wsvad.errors import WsvadError
from wsvad.extract.backbones import build_backbone, get_backbone_spec, list_backbones


def test_the_three_feature_families_are_registered():
    assert {"i3d", "c3d", "i3d_r50"} <= set(list_backbones())


@pytest.mark.parametrize("name", list_backbones())
def test_spec_prepare_matches_the_declared_geometry(name):
    spec = get_backbone_spec(name)
    assert spec.name == name and spec.description
    assert spec.snippet_len >= 1 and spec.crop_size >= 8 and all(d >= 1 for d in spec.feature_shape)
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (2, spec.snippet_len, spec.crop_size, spec.crop_size, 3), np.uint8)
    out = spec.prepare(clips)
    assert out.shape == (2, 3, spec.snippet_len, spec.crop_size, spec.crop_size)
    assert out.dtype == np.float32
    assert not np.allclose(out[0], out[1])  # the content is carried through, not a constant


def test_specs_do_not_import_torch_or_load_weights():
    # `wsvad backbones` and config resolution call get_backbone_spec; they must stay cheap.
    code = (
        "import sys; from wsvad.extract.backbones import get_backbone_spec, list_backbones\n"
        "[get_backbone_spec(n) for n in list_backbones()]\n"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_options_name_the_valid_ones():
    with pytest.raises(
        WsvadError, match=r"'i3d': unknown option\(s\) keeptime; valid: keep_time, logits"
    ):
        get_backbone_spec("i3d", keeptime=True)
    with pytest.raises(
        WsvadError, match=r"'c3d': unknown option\(s\) weight; valid: weights, relu"
    ):
        build_backbone("c3d", weight="c3d.pickle")
