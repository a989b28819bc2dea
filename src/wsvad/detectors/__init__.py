"""Detectors, shared by train and evaluate.

Each detector module registers its class with ``@register_detector`` when it is imported; the
import line marked below is the full list of detectors, so adding a detector means one new module
and its name on that line. The other modules are infrastructure: ``base`` (the ``Detector``
contract), ``registry``, ``layers``, ``losses``, ``recurrent`` and ``conv`` (shared tensor code) and
``checkpoint`` (weights on disk, the one module of this package that reads and writes files).
"""

from __future__ import annotations

# The detectors, imported for their @register_detector side effect (one name per module).
from wsvad.detectors import claws, dam, joint, mil, rtfm, salient, sta  # noqa: F401
from wsvad.detectors.base import Batch, Detector
from wsvad.detectors.registry import (
    build_detector,
    detector_class,
    detector_params_model,
    list_detectors,
    register_detector,
)

__all__ = [
    "Batch",
    "Detector",
    "build_detector",
    "detector_class",
    "detector_params_model",
    "list_detectors",
    "register_detector",
]
