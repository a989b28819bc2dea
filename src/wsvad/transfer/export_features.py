"""``wsvad export``: a feature store -> files in a published layout, plus list files in its style.

Each file is streamed from the store into a ``.npy`` memmap under a temporary name and renamed when
complete, so a video of any length needs one chunk of memory and a reader never sees half a file.
With frame intervals in the store, ``gt-test.npy`` is the test ground truth in RTFM's convention.
List files follow the published convention the existing repositories depend on: one absolute path
per file, abnormal videos first, then normal ones (RTFM and XDVioDet slice their lists by position),
crops of a video on consecutive lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wsvad.atomic import atomic_path, write_text_atomic
from wsvad.errors import WsvadError
from wsvad.pipeline.store import DEFAULT_CHUNK_T, FeatureStore
from wsvad.transfer.config import ExportConfig
from wsvad.transfer.formats import get_format


@dataclass
class ExportResult:
    """Files written by an export."""

    out: Path
    videos: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    lists: dict[str, Path] = field(default_factory=dict)  # split -> list file
    gt: Path | None = None  # RTFM-style frame GT of the test list, when the store knows it
    gt_note: str | None = None  # why no GT file was written


def _write_npy(path: Path, array: Any, crop: int | None) -> None:
    """Stream ``array[:, crop]`` (or all of ``array``) from zarr into ``path``, atomically."""
    shape = tuple(array.shape) if crop is None else (array.shape[0], *array.shape[2:])
    with atomic_path(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(array.dtype), shape=shape)
        for start in range(0, shape[0], DEFAULT_CHUNK_T):
            stop = min(start + DEFAULT_CHUNK_T, shape[0])
            out[start:stop] = array[start:stop] if crop is None else array[start:stop, crop]
        out.flush()
        del out  # closes the memmap before the rename


def _order(store: FeatureStore, ids: list[str]) -> dict[str, list[str]]:
    """Video ids per split, abnormal first, then normal, each sorted by id."""
    by_split: dict[str, list[tuple[int, str]]] = {}
    for vid in ids:
        attrs = store.video_attrs(vid)
        split, label = attrs.get("split"), attrs.get("label")
        if split not in ("train", "test") or label not in (0, 1):
            raise WsvadError(
                f"{store.path}: video {vid!r} has no split/label attrs "
                f"(split={split!r}, label={label!r})"
            )
        by_split.setdefault(split, []).append((-int(label), vid))
    return {split: [vid for _, vid in sorted(items)] for split, items in sorted(by_split.items())}


def _write_gt(store: FeatureStore, vids: list[str], out: Path, result: ExportResult) -> None:
    """``gt-test.npy``: frame labels of the test list's videos, concatenated in list order.

    RTFM's ``gt-ucf.npy``/``gt-sh.npy`` convention: each video contributes ``T * 16`` frames (its
    snippets times the stride), labels cut to that length, float64 0/1. Written only when every
    test video has intervals and the snippets do not overlap, so the file cannot be silently
    incomplete.
    """
    snippet_len, stride = store.attrs.get("snippet_len"), store.attrs.get("stride")
    if snippet_len is None or snippet_len != stride:
        result.gt_note = (
            "no gt-test.npy: snippets are not contiguous frame blocks "
            f"(snippet_len {snippet_len}, stride {stride})"
        )
        return
    parts = []
    for vid in vids:
        attrs = store.video_attrs(vid)
        if attrs.get("intervals") is None:
            result.gt_note = (
                f"no gt-test.npy: test video {vid} has no frame intervals (import with --dataset)"
            )
            return
        gt = np.zeros(int(attrs["n_snippets"]) * int(stride), dtype=np.float64)
        for start, end in attrs["intervals"]:
            # Intervals are half-open; slicing cuts them to T * stride.
            gt[int(start) : int(end)] = 1.0
        parts.append(gt)
    path = out / "gt-test.npy"
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.concatenate(parts), allow_pickle=False)
    result.gt = path


def run_export(cfg: ExportConfig) -> ExportResult:
    """Write every video of ``cfg.store`` (or of one split) in the layout ``cfg.format``.

    Returns:
        The videos, feature files and list files written.
    """
    store = FeatureStore.open(cfg.store)
    fmt = get_format(cfg.format, cfg.stream)
    if fmt.export_names is None:
        raise WsvadError(f"--format {cfg.format}: cannot be exported exactly")
    ids = store.video_ids()
    if not ids:
        raise WsvadError(f"{cfg.store}: the store holds no complete video")
    order = _order(store, ids)
    if cfg.split is not None:
        order = {cfg.split: order.get(cfg.split, [])}
        if not order[cfg.split]:
            raise WsvadError(f"{cfg.store}: no {cfg.split} video in the store")
    try:
        cfg.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WsvadError(
            f"{cfg.out}: cannot create the output folder ({exc.strerror or exc})"
        ) from exc
    prefix = (
        cfg.path_prefix.rstrip("/\\") if cfg.path_prefix is not None else str(cfg.out.resolve())
    )
    result = ExportResult(cfg.out)
    for split, vids in order.items():
        lines = []
        for vid in vids:
            array = store.array(vid)
            for name, crop in fmt.export_names(vid, store.crops):
                path = cfg.out / name
                _write_npy(path, array, crop)
                result.files.append(path)
                lines.append(f"{prefix}/{name}")
            result.videos.append(vid)
        list_path = cfg.out / f"{split}.list"
        write_text_atomic(list_path, "".join(f"{line}\n" for line in lines))
        result.lists[split] = list_path
        if split == "test":
            _write_gt(store, vids, cfg.out, result)
    attrs = store.attrs
    manifest = {
        "store": str(cfg.store.resolve()),
        "store_config_hash": attrs.get("config_hash"),
        "format": fmt.name,
        "backbone": attrs.get("backbone"),
        "provenance": attrs.get("provenance"),
        "crop_order": attrs.get("crop_order"),
        "lists": {split: path.name for split, path in result.lists.items()},
        "gt": None if result.gt is None else result.gt.name,
        "gt_note": result.gt_note,
        "videos": len(result.videos),
    }
    write_text_atomic(
        cfg.out / "export.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    )
    return result
