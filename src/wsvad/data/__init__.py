"""Dataset adapters (UCF-Crime, ShanghaiTech, XD-Violence, any folder, synthetic). Importing the
package imports every adapter module, which registers it. No torch here."""

from __future__ import annotations

import importlib
import pkgutil

from wsvad.data.records import DatasetIndex, Problem, VideoRecord
from wsvad.data.registry import get_dataset, list_datasets, load_dataset, register_dataset

__all__ = [
    "DatasetIndex",
    "Problem",
    "VideoRecord",
    "get_dataset",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]

_INFRASTRUCTURE = {"records", "registry"}
for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
