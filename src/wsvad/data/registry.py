"""Dataset adapter registry: ``--dataset NAME`` -> a function
``(root, **options) -> DatasetIndex``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wsvad.data.records import DatasetIndex
from wsvad.errors import WsvadError


@dataclass(frozen=True)
class DatasetAdapter:
    name: str
    load: Callable[..., DatasetIndex]
    summary: str  # one line for `wsvad datasets`
    layout: str  # what it expects on disk, for `wsvad datasets`


_REGISTRY: dict[str, DatasetAdapter] = {}


def register_dataset(
    name: str, summary: str, layout: str
) -> Callable[[Callable[..., DatasetIndex]], Callable[..., DatasetIndex]]:
    def wrap(load: Callable[..., DatasetIndex]) -> Callable[..., DatasetIndex]:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} registered twice")
        _REGISTRY[name] = DatasetAdapter(name, load, summary, layout)
        return load

    return wrap


def list_datasets() -> list[DatasetAdapter]:
    _import_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_dataset(name: str) -> DatasetAdapter:
    _import_all()
    if name not in _REGISTRY:
        raise WsvadError(f"unknown dataset {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def load_dataset(name: str, root: Path | str, **options: Any) -> DatasetIndex:
    """Parse the dataset at ``root`` with adapter ``name`` (problems are collected, not raised)."""
    root = Path(root)
    if not root.is_dir():
        raise WsvadError(f"{root}: dataset root does not exist or is not a directory")
    index = get_dataset(name).load(root, **options)
    if options.get("require_videos", True) and not index.records:
        # an empty or misspelt folder: one line instead of an empty store (or one error per
        # video of the official lists, which the adapters find even without the videos)
        raise WsvadError(
            f"no videos found under {root} (dataset {name!r}; `wsvad datasets` shows the layout "
            "it expects)"
        )
    return index


def _import_all() -> None:
    import wsvad.data  # noqa: F401
