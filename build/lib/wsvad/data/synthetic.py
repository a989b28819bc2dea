"""The synthetic surveillance dataset (``wsvad synth``): the UCF-Crime adapter on a synth root.

The generator writes the UCF-Crime layout, lists and annotation format, so this adapter is the
``ucf`` parser with the synth's own class list (from ``synth.json``; else the classes found in the
lists).
``--dataset ucf`` reads the same root too, with identical records.
"""

from __future__ import annotations

import json
from pathlib import Path

from wsvad.data.records import DatasetIndex, Problem
from wsvad.data.registry import register_dataset
from wsvad.data.synth.generate import PROVENANCE
from wsvad.data.ucf import load_ucf_layout


@register_dataset(
    "synthetic",
    summary=(
        "Synthetic fixed-camera surveillance videos written by `wsvad synth` (UCF-Crime layout)"
    ),
    layout=(
        "ROOT as written by `wsvad synth --out ROOT`: "
        "the UCF-Crime layout plus synth.json (seed and parameters)"
    ),
)
def load_synthetic(
    root: Path,
    train_list: Path | None = None,
    test_list: Path | None = None,
    annotations: Path | None = None,
) -> DatasetIndex:
    """The ``synthetic`` adapter: UCF layout, class names from ``synth.json``."""
    root = Path(root)
    known: tuple[str, ...] | None = None
    problems: list[Problem] = []
    meta_path = root / PROVENANCE
    if meta_path.is_file():
        try:
            known = tuple(json.loads(meta_path.read_text(encoding="utf-8"))["classes"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(
                Problem(
                    "warning",
                    "bad-provenance",
                    f"{meta_path}: cannot read the class list ({exc}); "
                    "using the classes found in the lists",
                    path=str(meta_path),
                )
            )
    else:
        problems.append(
            Problem(
                "warning",
                "missing-file",
                f"{meta_path}: not found; using the classes found in the lists",
                path=str(meta_path),
            )
        )
    index = load_ucf_layout(
        root, train_list, test_list, annotations, name="synthetic", known_classes=known
    )
    index.problems[:0] = problems
    return index
