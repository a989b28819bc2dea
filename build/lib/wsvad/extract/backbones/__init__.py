"""Feature backbones (registry.py states the contract). A backbone module registers its backbone
when it is imported, so the import line below is the full list: add a new backbone module there.
"""

from __future__ import annotations

from wsvad.extract.backbones import c3d, i3d, i3d_r50, random3d  # noqa: F401 - registers
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
