"""The detector registry: the explicit list of detectors, and unknown names as one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wsvad.detectors import build_detector, detector_class, detector_params_model, list_detectors
from wsvad.detectors.checkpoint import load_detector, save_detector
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
        "base claws dam joint layers losses mil registry rtfm salient sta".split()
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
