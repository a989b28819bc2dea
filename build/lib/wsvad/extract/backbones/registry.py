"""Backbone registry: each backbone declares its input geometry, normalisation and feature shape, so
the extract stage needs no per-backbone branches."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wsvad.errors import WsvadError


@dataclass(frozen=True)
class BackboneSpec:
    """What the extract stage must know to feed a backbone and store its output.

    Attributes:
        name: registry key.
        feature_shape: per-snippet, per-crop output shape, e.g. ``(1024,)`` or ``(7, 1024)``.
        snippet_len: frames per snippet the network expects (16 for I3D/C3D, 64 for temporal I3D).
        crop_size: square crop side in pixels (224, or 112 for C3D).
        resize: default frame resize, ``"short256"``, ``"340x256"`` or ``"171x128"`` (w x h).
        prepare: ``uint8 [B, L, S, S, 3] (RGB) -> float32 [B, 3, L, S, S]`` numpy normalisation.
        weights_sha256: checksum of the weights in use (``None`` for random weights).
        description: one line for ``wsvad backbones``.
        options: the options the backbone was built with (recorded in store attrs).
        snippet_len_fixed: the network accepts no other snippet length (its output shape depends
            on it).
    """

    name: str
    feature_shape: tuple[int, ...]
    snippet_len: int
    crop_size: int
    resize: str
    prepare: Callable[[np.ndarray], np.ndarray]
    weights_sha256: str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    snippet_len_fixed: bool = False


# name -> (spec factory(**options) -> BackboneSpec, builder(device, **options) -> nn.Module)
_REGISTRY: dict[str, tuple[Callable[..., BackboneSpec], Callable[..., Any]]] = {}


def register_backbone(
    name: str, spec: Callable[..., BackboneSpec]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a builder ``(device="cpu", **options) -> nn.Module``; register it with its spec
    factory under ``name``."""

    def wrap(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} registered twice")
        _REGISTRY[name] = (spec, builder)
        return builder

    return wrap


def list_backbones() -> list[str]:
    _import_all()
    return sorted(_REGISTRY)


def _lookup(name: str) -> tuple[Callable[..., BackboneSpec], Callable[..., Any]]:
    _import_all()
    if name not in _REGISTRY:
        raise WsvadError(f"unknown backbone {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def _check_options(name: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    # A misspelt option (from YAML or --set) should name the valid ones, not raise a TypeError.
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(options) - set(params) - {"device"})
    if unknown:
        valid = ", ".join(k for k in params if k != "device") or "none"
        bad = ", ".join(unknown)
        raise WsvadError(f"backbone {name!r}: unknown option(s) {bad}; valid: {valid}")


def get_backbone_spec(name: str, **options: Any) -> BackboneSpec:
    """The spec of backbone ``name`` built with ``options`` (cheap: no weights are loaded)."""
    spec = _lookup(name)[0]
    _check_options(name, spec, options)
    return spec(**options)


def build_backbone(name: str, device: str = "cpu", **options: Any):  # -> torch.nn.Module
    """Build backbone ``name`` in eval mode on ``device``.

    The module maps ``[B, 3, L, S, S] -> [B, *feature_shape]``.
    """
    builder = _lookup(name)[1]
    _check_options(name, builder, options)
    return builder(device=device, **options)


def _import_all() -> None:
    # Importing the package imports every backbone module, which registers it.
    import wsvad.extract.backbones  # noqa: F401
