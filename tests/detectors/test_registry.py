"""The detector registry: the explicit list of detectors, and unknown names as one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pydantic import BaseModel

from wsvad.detectors import (
    build_detector,
    detector_class,
    detector_params_model,
    list_detectors,
    registry,
)
from wsvad.detectors.checkpoint import load_detector, save_detector
from wsvad.detectors.mil import Mil, MilParams
from wsvad.detectors.registry import register_detector
from wsvad.errors import WsvadError

KNOWN = "claws, dam, joint, mil, rtfm, salient, sta"


def test_the_package_imports_exactly_the_detector_modules():
    assert list_detectors() == KNOWN.split(", ")
    # In a fresh interpreter: importing the package imports the detectors it lists and their
    # shared code, not checkpoint.py (file I/O, imported by train and evaluate where needed).
    code = (
        "import sys, wsvad.detectors\n"
        "names = [m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('wsvad.detectors.')]\n"
        "print(' '.join(sorted(names)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == (
        "base claws conv dam joint layers losses mil recurrent registry rtfm salient sta".split()
    )


@pytest.mark.parametrize(
    "lookup",
    [detector_class, detector_params_model, lambda name: build_detector(name, (8,))],
    ids=["detector_class", "detector_params_model", "build_detector"],
)
def test_an_unknown_detector_name_is_a_wsvad_error_listing_the_known_ones(lookup):
    with pytest.raises(WsvadError) as info:
        lookup("nope")
    assert str(info.value) == f"unknown detector 'nope'; known: {KNOWN}"
    assert not isinstance(info.value, KeyError)


def test_a_saved_detector_naming_an_unknown_detector_names_its_file(tmp_path):
    save_detector(tmp_path / "model", build_detector("mil", (8,)))
    meta_path = tmp_path / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["detector"] = "gone"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(WsvadError) as info:
        load_detector(tmp_path / "model")
    assert str(info.value) == f"{tmp_path / 'model'}.json: unknown detector 'gone'; known: {KNOWN}"


def test_a_name_registered_twice_is_refused():
    with pytest.raises(ValueError, match=r"^detector 'mil' registered twice$"):
        register_detector("mil", params=BaseModel)(detector_class("salient"))
    assert detector_class("mil").registry_name == "mil"
    assert detector_class("salient").registry_name == "salient"


def test_build_detector_records_what_rebuilds_it():
    det = build_detector("mil", [np.int64(8)], {"hidden1": 7}, n_classes=np.int64(1))
    assert det.build_spec == {
        "detector": "mil",
        "params": {**detector_params_model("mil")().model_dump(mode="json"), "hidden1": 7},
        "feature_shape": [8],
        "n_classes": 1,
    }
    assert type(det.build_spec["feature_shape"][0]) is int
    assert type(det.build_spec["n_classes"]) is int
    assert det.fc1.in_features == 8 and det.fc1.out_features == 7
    # a params model instance is used as it is; n_classes reaches the detector
    params = detector_params_model("joint")(segments=3)
    joint = build_detector("joint", (8,), params, n_classes=3)
    assert joint.params is params
    assert joint.build_spec["n_classes"] == 3 and joint.n_classes == 3
    default = build_detector("joint", (8,))  # no anomaly classes: a binary head
    assert default.build_spec["n_classes"] == 1 and default.binary_head
    assert build_detector("mil", (8,)).params == detector_params_model("mil")()


def test_invalid_detector_params_name_the_detector_and_the_field():
    with pytest.raises(ValueError) as info:
        build_detector("mil", (8,), {"hidden1": 0})
    assert str(info.value) == (
        "detector mil params: hidden1: should be greater than or equal to 1 (got 0)"
    )


def test_register_detector_adds_the_class_under_its_name():
    class Probe(Mil):
        pass

    try:
        assert register_detector("_probe", params=MilParams)(Probe) is Probe
        assert registry._REGISTRY["_probe"] == (Probe, MilParams)
        assert Probe.registry_name == "_probe" and Mil.registry_name == "mil"
        assert detector_class("_probe") is Probe
    finally:
        registry._REGISTRY.pop("_probe", None)
    assert "_probe" not in list_detectors()


def test_build_spec_is_plain_json_for_every_detector():
    # model.json stores it: tuples in params (dam's mlp_hidden, claws' hidden) must be JSON lists
    for name in list_detectors():
        cls = detector_class(name)
        det = build_detector(name, cls.example_feature_shape, cls.example_params, n_classes=3)
        assert json.loads(json.dumps(det.build_spec)) == det.build_spec, name
