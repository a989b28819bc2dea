"""Detectors, shared by train and evaluate. Every module in this package that defines a detector
registers it on import; importing the package imports them all."""

from __future__ import annotations

import importlib
import pkgutil

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

_INFRASTRUCTURE = {"base", "registry", "losses", "layers"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
