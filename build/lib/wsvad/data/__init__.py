"""Dataset adapters (UCF-Crime, ShanghaiTech, XD-Violence, any folder, synthetic). Importing the
package imports every adapter module (listed below), which registers it. No torch here."""

from __future__ import annotations

from wsvad.data import folder, shanghaitech, synthetic, ucf, xd  # noqa: F401  (registers them)
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
