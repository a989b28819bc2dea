"""Detector registry: a dict filled by the ``@register_detector`` decorator when
``wsvad.detectors`` imports each detector module (one import line per module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from wsvad.detectors.base import Detector
from wsvad.errors import WsvadError

_REGISTRY: dict[str, tuple[type[Detector], type[BaseModel]]] = {}


def register_detector(
    name: str, params: type[BaseModel]
) -> Callable[[type[Detector]], type[Detector]]:
    """Register a detector class under ``name`` with its pydantic params model."""

    def wrap(cls: type[Detector]) -> type[Detector]:
        if name in _REGISTRY:
            raise ValueError(f"detector {name!r} registered twice")
        _REGISTRY[name] = (cls, params)
        cls.registry_name = name
        return cls

    return wrap


def list_detectors() -> list[str]:
    return sorted(_REGISTRY)


def detector_params_model(name: str) -> type[BaseModel]:
    return _lookup(name)[1]


def detector_class(name: str) -> type[Detector]:
    return _lookup(name)[0]


def _lookup(name: str) -> tuple[type[Detector], type[BaseModel]]:
    if name not in _REGISTRY:
        # A detector name comes from the user (config, --detector, model.json): a one-line error.
        raise WsvadError(f"unknown detector {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build_detector(
    name: str,
    feature_shape: tuple[int, ...],
    params: dict[str, Any] | BaseModel | None = None,
    n_classes: int = 1,
) -> Detector:
    """Build detector ``name`` for per-snippet features of ``feature_shape``.

    Args:
        name: registry key (an unknown one raises ``WsvadError`` naming the known keys).
        feature_shape: ``F`` of the store (``(1024,)`` for I3D, ``(7, 1024)`` for temporal I3D).
        params: the detector's params (dict validated against its model, or the model itself).
        n_classes: number of classes including Normal (for detectors with a classification head).
    """
    cls, params_model = _lookup(name)
    if isinstance(params, BaseModel):
        validated = params
    else:
        try:
            validated = params_model.model_validate(params or {})
        except ValidationError as exc:
            from wsvad.config import format_validation_error

            raise ValueError(format_validation_error(exc, f"detector {name} params")) from exc
    shape = tuple(int(d) for d in feature_shape)
    detector = cls(shape, validated, n_classes=n_classes)
    # What checkpoint.save_detector records so that load_detector can rebuild the same module.
    detector.build_spec = {
        "detector": name,
        "params": validated.model_dump(mode="json"),
        "feature_shape": list(shape),
        "n_classes": int(n_classes),
    }
    return detector
