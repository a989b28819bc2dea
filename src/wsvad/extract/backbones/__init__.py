"""Feature backbones. Every module here that defines a backbone registers it on import."""

from __future__ import annotations

import importlib
import pkgutil

from wsvad.extract.backbones.registry import (
    BackboneSpec,
    build_backbone,
    get_backbone_spec,
    list_backbones,
    register_backbone,
)

__all__ = [
    "BackboneSpec",
    "build_backbone",
    "get_backbone_spec",
    "list_backbones",
    "register_backbone",
]

_INFRASTRUCTURE = {"registry", "weights", "nets"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
