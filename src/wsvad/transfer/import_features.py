"""``wsvad import``: published feature files -> a wsvad feature store, one video at a time.

Labels, splits and frame GT come from the dataset adapter (matched by video id); without one, the
split comes from the list a video is in and the label from the benchmark's naming convention
(:mod:`wsvad.transfer.names`). Videos are read through ``np.load(mmap_mode="r")`` and written
``chunk`` rows at a time through :class:`FeatureStore` writers (atomic rename), in a thread pool:
numpy copies, Blosc and hashlib release the GIL, and a killed import resumes where it stopped.

Checksums: by default each feature file's sha256 is stored with its video. The import reads every
byte anyway, so hashing adds CPU but no I/O; on a slow CPU with tens of GB, ``checksum: stat``
records size and mtime instead (and says so in the attrs).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from wsvad.atomic import write_text_atomic
from wsvad.checksums import sha256_file
from wsvad.config import config_hash, config_to_json
from wsvad.data.framecount import probe_frame_count
from wsvad.data.records import VideoRecord
from wsvad.errors import WsvadError
from wsvad.pipeline.store import DEFAULT_CHUNK_T, FeatureStore
from wsvad.transfer.config import ImportConfig
from wsvad.transfer.formats import FeatureFormat, Source, get_format
from wsvad.transfer.lists import (
    ListSpec,
    VideoFiles,
    group_listed,
    group_scanned,
    split_from_list_name,
)
from wsvad.transfer.names import label_from_name

log = logging.getLogger(__name__)

REPORT = "import-report.json"  # everything a run left out, for when the CLI's tables are cut short
_PROBES = 9  # videos whose headers vote on the store's geometry
# Config keys that do not change what is imported: a resumed import may change them.
_NOT_HASHED = ("workers", "overwrite")


@dataclass(frozen=True)
class Unmatched:
    """A video with features but no labels (not in the dataset, or a name that carries none)."""

    video_id: str
    split: str | None
    listed_as: str | None
    reason: str


@dataclass
class ImportPlan:
    """One video to import: its files, and the per-video attrs from the dataset or the name."""

    video: VideoFiles
    label_attrs: dict[str, Any]
    source: str | None
    fps: float | None
    video_path: Path | None = None  # the dataset's video file, for --probe-frames
    # The frame count the dataset's own files state (SH masks, UR-DMU annotation).
    dataset_frames: int | None = None


@dataclass
class ImportResult:
    """What an import did; ``failed`` and ``unmatched`` make the CLI exit 3."""

    store: Path
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # complete from an earlier run
    failed: dict[str, str] = field(default_factory=dict)  # video id -> reason
    # video id -> "<list>:<line>" or file name
    listed_as: dict[str, str | None] = field(default_factory=dict)
    unmatched: list[Unmatched] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # dataset videos without features (info only)
    bad_entries: list[str] = field(default_factory=list)  # list lines naming no file of the format
    notes: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.failed or self.unmatched or self.bad_entries)


def file_fingerprint(path: Path, root: Path, checksum: str) -> dict[str, Any]:
    """``{"path": relative path, "sha256": ...}`` or ``{"path", "size", "mtime"}``."""
    rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    if checksum == "stat":
        st = path.stat()
        return {"path": rel, "size": st.st_size, "mtime": st.st_mtime}
    return {"path": rel, "sha256": sha256_file(path)}


def _open(fmt: FeatureFormat, video: VideoFiles) -> Source:
    crops = sorted(video.files)
    if crops != list(range(len(crops))):
        raise WsvadError(
            f"{video.video_id}: crop files {crops} are not numbered 0..{len(crops) - 1}"
        )
    return fmt.open([video.files[k] for k in crops])


def _collect(
    cfg: ImportConfig, fmt: FeatureFormat
) -> tuple[dict[str, VideoFiles], list[str], set[str]]:
    if not cfg.features_root.is_dir():
        raise WsvadError(f"{cfg.features_root}: features root does not exist or is not a directory")
    if not cfg.lists:
        return group_scanned(cfg.features_root, fmt.parse_name), [], set()
    specs = [ListSpec(lf.path, lf.split or split_from_list_name(lf.path)) for lf in cfg.lists]
    videos, bad = group_listed(specs, cfg.features_root, fmt.parse_name)
    if not videos:
        raise WsvadError(
            f"{', '.join(str(s.path) for s in specs)}: no {fmt.name} feature file is listed"
        )
    return videos, bad, {s.split for s in specs}


def _record_for(video_id: str, by_id: dict[str, VideoRecord]) -> VideoRecord | None:
    # XD-Violence annotation names sometimes keep ".mp4" (SOURCES.md): accept either spelling.
    return (
        by_id.get(video_id)
        or by_id.get(video_id.removesuffix(".mp4"))
        or by_id.get(f"{video_id}.mp4")
    )


def plan_import(cfg: ImportConfig, fmt: FeatureFormat, result: ImportResult) -> list[ImportPlan]:
    """Match the published videos with labels; unmatched and broken ones go into ``result``."""
    videos, result.bad_entries, list_splits = _collect(cfg, fmt)
    by_id: dict[str, VideoRecord] | None = None
    skipped: dict[str, str] = {}  # video id -> why the adapter left it out
    if cfg.dataset is not None:
        by_id, skipped = _dataset_records(cfg, videos, result)
    plans: list[ImportPlan] = []
    for video in videos.values():
        result.listed_as[video.video_id] = video.listed_as
        if video.problem:
            result.failed[video.video_id] = video.problem
            continue
        if by_id is not None:
            plan = _plan_from_dataset(cfg, video, by_id, skipped, result)
        else:
            plan = _plan_from_name(video, result)
        if plan is not None:
            plans.append(plan)
    if by_id is not None:
        wanted = list_splits or {"train", "test"}
        matched = {plan.video.video_id for plan in plans}
        result.missing = sorted(
            r.video_id for r in by_id.values() if r.split in wanted and r.video_id not in matched
        )
    return plans


def _dataset_records(
    cfg: ImportConfig, videos: dict[str, VideoFiles], result: ImportResult
) -> tuple[dict[str, VideoRecord], dict[str, str]]:
    """The dataset's records by id, and why the adapter left out each video it rejected; the
    adapter's problems that concern no published video become notes of ``result``.

    Raises:
        WsvadError: the adapter found no usable video at all (``--root`` is not the dataset's).
    """
    from wsvad.data.check import load_labels_only

    index = load_labels_only(cfg.dataset, cfg.root, **cfg.dataset_options)
    skipped = {p.video_id: p.message for p in index.errors if p.video_id}
    if not index.records:
        kinds = Counter(p.kind for p in index.errors)
        shown = (
            ", ".join(f"{n} {kind}" for kind, n in kinds.most_common(3)) or "no problem reported"
        )
        raise WsvadError(
            f"{cfg.root}: the {cfg.dataset} adapter found no usable video ({shown}); "
            "--root must hold the dataset's list and annotation files "
            f"(see `wsvad check --dataset {cfg.dataset} --root {cfg.root}`)"
        )
    result.notes += [
        f"dataset: {p.message}" for p in index.problems if p.kind == "video-not-on-disk"
    ]
    for problem in index.errors:
        if problem.video_id not in videos:  # those of listed videos are reported per video
            result.notes.append(f"dataset: {problem.message}")
    return index.by_id(), skipped


def _plan_from_dataset(
    cfg: ImportConfig,
    video: VideoFiles,
    by_id: dict[str, VideoRecord],
    skipped: dict[str, str],
    result: ImportResult,
) -> ImportPlan | None:
    """The plan of a video the dataset labels, or ``None`` (recorded as unmatched) if it does
    not."""
    record = _record_for(video.video_id, by_id)
    if record is None:
        why = skipped.get(video.video_id)
        reason = (
            f"skipped by the {cfg.dataset} adapter: {why}"
            if why
            else f"not in the {cfg.dataset} dataset"
        )
        result.unmatched.append(Unmatched(video.video_id, video.split, video.listed_as, reason))
        return None
    if video.split is not None and video.split != record.split:
        result.notes.append(
            f"{video.video_id}: listed as {video.split}, the dataset says {record.split} (kept)"
        )
    # Stored under the dataset's spelling of the id, so later stages match it without tricks.
    return ImportPlan(
        replace(video, video_id=record.video_id),
        record.to_attrs(),
        record.rel_path,
        record.fps,
        record.path,
        record.n_frames,
    )


def _plan_from_name(video: VideoFiles, result: ImportResult) -> ImportPlan | None:
    """The plan of a video whose name carries its label (no dataset given), or ``None`` (recorded
    as unmatched) when the name says nothing."""
    named = label_from_name(video.video_id)
    if named is None:
        result.unmatched.append(
            Unmatched(
                video.video_id,
                video.split,
                video.listed_as,
                "the name carries no label; give --dataset/--root",
            )
        )
        return None
    label, classes = named
    attrs = {"split": video.split, "label": label, "classes": list(classes), "intervals": None}
    return ImportPlan(video, attrs, None, None)


def _store_attrs(cfg: ImportConfig, fmt: FeatureFormat, probe: Source) -> dict[str, Any]:
    config = config_to_json(cfg)
    hashed = {k: v for k, v in config.items() if k not in _NOT_HASHED}
    crops = probe.shape[1]
    snippet_len = cfg.snippet_len or fmt.snippet_len
    return {
        "provenance": {
            "kind": "imported",
            "format": fmt.name,
            "publisher_backbone": cfg.publisher_backbone or fmt.publisher_backbone,
            "features_root": str(cfg.features_root.resolve()),
            "files": [
                file_fingerprint(lf.path, lf.path.parent, "sha256")
                | {"path": str(lf.path.resolve())}
                for lf in cfg.lists
            ],
            "file_checksum": cfg.checksum,
            "crop_order_note": fmt.crop_note,
        },
        "dataset": cfg.dataset,
        "backbone": fmt.backbone,
        "feature_shape": list(probe.shape[2:]),
        "dtype": probe.dtype,
        "crops": crops,
        "crop_order": fmt.crop_order(crops),
        "modality": fmt.modality,
        "snippet_len": snippet_len,
        "stride": cfg.stride or fmt.stride or snippet_len,
        "tail": None,
        "fps": None,
        "resize": None,
        "crop_size": None,
        "decoder": None,
        "weights_sha256": None,
        # Sultani's files hold 32 segment means, already bagged: a bag cache of T=32 is the
        # identity.
        "bagged": fmt.bagged,
        "config": config,
        "config_hash": config_hash(hashed),
    }


def _import_one(
    store: FeatureStore, cfg: ImportConfig, fmt: FeatureFormat, plan: ImportPlan
) -> None:
    video = plan.video
    source = _open(fmt, video)
    expected = (store.crops, *store.feature_shape)
    if tuple(source.shape[1:]) != expected or source.dtype != store.dtype:
        raise WsvadError(
            f"shape [T, {', '.join(map(str, source.shape[1:]))}] {source.dtype} "
            "differs from the store's "
            f"[T, {', '.join(map(str, expected))}] {store.dtype}"
        )
    n_snippets = source.shape[0]
    if n_snippets == 0:
        raise WsvadError("no snippets (T = 0)")
    snippet_len, stride = store.attrs.get("snippet_len"), store.attrs.get("stride")
    with store.writer(video.video_id) as writer:
        for start in range(0, n_snippets, DEFAULT_CHUNK_T):
            writer.append(source.read(start, min(start + DEFAULT_CHUNK_T, n_snippets)))
        files = [
            file_fingerprint(video.files[k], cfg.features_root, cfg.checksum)
            for k in sorted(video.files)
        ]
        n_frames, how = _frame_count(cfg, plan, n_snippets, snippet_len, stride)
        writer.commit(
            {
                **plan.label_attrs,
                "source": plan.source,
                "feature_files": files,
                "fps": plan.fps if plan.fps is not None else source.fps,
                "n_frames": n_frames,
                "n_frames_estimated": how == "estimate",
                "n_frames_source": how,
                "decoder": None,
            }
        )


def _frame_count(
    cfg: ImportConfig,
    plan: ImportPlan,
    n_snippets: int,
    snippet_len: int | None,
    stride: int | None,
) -> tuple[int | None, str | None]:
    """``(n_frames, "probed" | "dataset" | "estimate")``, or ``(None, None)`` for already-bagged
    features.

    Published sets keep no frame counts. With ``probe_frames`` and the dataset's video on disk, the
    true count is read from the video; else the count the dataset's own files state (a ShanghaiTech
    mask's length, UR-DMU's UCF annotation); else the estimate ``(T - 1) * stride + snippet_len``
    (``T * 16`` for RTFM), the frame count RTFM's own GT files (gt-ucf.npy) assume.
    """
    if cfg.probe_frames and plan.video_path is not None and Path(plan.video_path).exists():
        probed = probe_frame_count(Path(plan.video_path))
        if probed is not None:
            return probed, "probed"
    if plan.dataset_frames is not None:
        return int(plan.dataset_frames), "dataset"
    if snippet_len is None or stride is None:
        return None, None
    return (n_snippets - 1) * stride + snippet_len, "estimate"


def _probe(fmt: FeatureFormat, plans: list[ImportPlan], result: ImportResult) -> Source:
    """The store's geometry: the most common (crops, D, dtype) among the first readable videos.

    A majority of a few, not the very first file, so one odd file cannot define the store; its video
    then fails alone with a shape message. Only headers are read (mmap), so this costs milliseconds.
    """
    seen: list[Source] = []
    for plan in plans:
        try:
            seen.append(_open(fmt, plan.video))
        except WsvadError as exc:
            result.failed[plan.video.video_id] = str(exc)
        if len(seen) == _PROBES:
            break
    if not seen:
        raise WsvadError(
            f"no listed video could be read (first error: {next(iter(result.failed.values()))})"
        )
    keys = [(s.shape[1:], s.dtype) for s in seen]
    return seen[max(range(len(seen)), key=lambda i: (keys.count(keys[i]), -i))]


def _write_report(path: Path, result: ImportResult) -> None:
    report = {
        "imported": len(result.imported),
        "skipped_complete": len(result.skipped),
        "failed": result.failed,
        "unmatched": [asdict(u) for u in result.unmatched],
        "missing_features": result.missing,
        "bad_list_entries": result.bad_entries,
        "notes": result.notes,
    }
    write_text_atomic(path, json.dumps(report, indent=1, sort_keys=True) + "\n")


def run_import(
    cfg: ImportConfig, progress: Callable[[str, bool], None] | None = None
) -> ImportResult:
    """Import the published features ``cfg`` describes into the store ``cfg.out``.

    Args:
        cfg: the import config.
        progress: called as ``progress(video_id, ok)`` after each video (the CLI's progress bar).

    Returns:
        What was imported, skipped, failed and left unmatched.
    """
    fmt = get_format(cfg.format, cfg.stream)
    result = ImportResult(cfg.out)
    plans = plan_import(cfg, fmt, result)
    if not plans:
        raise WsvadError(
            f"{cfg.features_root}: nothing to import "
            f"({len(result.unmatched)} unmatched, {len(result.failed)} broken)"
        )
    probe = _probe(fmt, plans, result)
    attrs = _store_attrs(cfg, fmt, probe)
    # Broken videos are expected too, so `wsvad info` counts them as failed, not forgotten.
    attrs["expected_videos"] = sorted({p.video.video_id for p in plans} | set(result.failed))
    store = FeatureStore.create(cfg.out, attrs, overwrite=cfg.overwrite)
    store.acquire_lock()
    try:
        if store.clean_tmp():
            log.info("%s: removed half-written videos of an interrupted run", cfg.out)
        todo = _not_yet_imported(store, plans, result)
        kinds = _import_all(store, cfg, fmt, todo, result, progress)
        failures = {
            vid: {
                "video_id": vid,
                "source": result.listed_as.get(vid),
                "exception": kinds.get(vid, "WsvadError"),
                "reason": reason,
                "decoder": None,
            }
            for vid, reason in result.failed.items()
        }
        store.record_failures(failures, clear=result.imported + result.skipped)
        _write_report(store.path / REPORT, result)
    finally:
        store.release_lock()
    result.imported.sort()
    return result


def _not_yet_imported(
    store: FeatureStore, plans: list[ImportPlan], result: ImportResult
) -> list[ImportPlan]:
    """The plans still to run: broken videos are left out, complete ones go to
    ``result.skipped``."""
    todo = []
    for plan in plans:
        if plan.video.video_id in result.failed:
            continue
        if store.has_video(plan.video.video_id):
            result.skipped.append(plan.video.video_id)
        else:
            todo.append(plan)
    return todo


def _import_all(
    store: FeatureStore,
    cfg: ImportConfig,
    fmt: FeatureFormat,
    todo: list[ImportPlan],
    result: ImportResult,
    progress: Callable[[str, bool], None] | None,
) -> dict[str, str]:
    """Import ``todo`` on ``cfg.workers`` threads into ``result``; returns the exception class name
    of each failed video (list problems found earlier are WsvadErrors)."""
    kinds: dict[str, str] = {}
    pool = ThreadPoolExecutor(max_workers=cfg.workers)
    try:
        futures = {
            pool.submit(_import_one, store, cfg, fmt, plan): plan.video.video_id for plan in todo
        }
        for future in as_completed(futures):
            vid = futures[future]
            try:
                future.result()
                result.imported.append(vid)
            except (WsvadError, OSError, ValueError) as exc:
                result.failed[vid] = str(exc)
                kinds[vid] = type(exc).__name__
            if progress is not None:
                progress(vid, vid not in result.failed)
    finally:
        # On Ctrl-C: let the videos in flight finish (each commits atomically), start no new one.
        pool.shutdown(wait=True, cancel_futures=True)
    return kinds
