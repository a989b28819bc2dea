"""``run_extract(cfg)``: the extract stage's one entry point (the CLI, the demo and tests call it).

The client (this process) owns the store's root metadata, the lock and the failure table; workers
only write their own videos. Completed videos are skipped on a re-run, ``.tmp`` debris of a killed
run is deleted and redone, and a store made with different feature settings is refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from wsvad.config import config_hash
from wsvad.data.records import VideoRecord
from wsvad.errors import WsvadError
from wsvad.extract.config import ExtractConfig, resolve_config
from wsvad.extract.crops import crop_order
from wsvad.extract.faults import stop_error
from wsvad.extract.forward import PROGRESS_TOPIC
from wsvad.extract.precision import compute_attrs, precision_line
from wsvad.extract.segments import segment_attrs
from wsvad.extract.shards import (
    initialise_store,
    lock_name,
    open_for_shard,
    shard_records,
    shard_writer,
)
from wsvad.extract.worker import (
    Task,
    VideoOutcome,
    VideoResult,
    remove_parts,
    run_task,
)
from wsvad.pipeline.cluster import THIS_MACHINE_KINDS, Runner, open_client
from wsvad.pipeline.nodes import node_name
from wsvad.pipeline.store import FeatureStore, store_write_error

log = logging.getLogger(__name__)


class ProgressEvent(NamedTuple):
    """Sent to the progress callback at the start, after every forward pass and every finished
    video.

    With dask the callback runs on the client's event-loop thread; calls never overlap.
    """

    total: int  # videos this run has to do
    done: int  # finished (including failed ones)
    failed: int
    frame_crops: int  # cumulative frames x crops through the model in this run
    video_id: str | None = None
    status: VideoOutcome | None = None


class ExtractSummary(NamedTuple):
    store: Path
    total: int  # videos selected from the dataset
    skipped: int  # already complete before this run
    extracted: int  # completed by this run
    failures: dict[str, dict[str, Any]]  # this run's failures, by video id
    frame_crops: int
    seconds: float
    # videos this run stored although their decoded length disagrees with their container's
    # (on_suspect: store): video id -> the store's ``suspect`` attr
    suspects: dict[str, dict[str, Any]] = {}  # never mutated: the run builds a new one
    precision: str = ""  # which precision the model ran in (extract.precision.precision_line)


def select_records(cfg: ExtractConfig) -> list[VideoRecord]:
    """The dataset's videos for ``cfg.split``; dataset errors refuse the run unless
    ``skip_invalid``."""
    from wsvad.data import load_dataset

    index = load_dataset(cfg.dataset, cfg.root)
    records = index.records if cfg.split == "all" else index.split(cfg.split)
    errors = index.errors
    if errors:
        if not cfg.skip_invalid:
            shown = "; ".join(
                f"{p.path or p.video_id or cfg.root}: {p.message}" for p in errors[:3]
            )
            more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
            raise WsvadError(
                f"{cfg.root}: the {cfg.dataset} dataset has {len(errors)} error(s): {shown}{more}; "
                "fix them (wsvad check) or pass --skip-invalid to skip the affected videos"
            )
        bad = {p.video_id for p in errors if p.video_id}
        log.warning("skipping %d video(s) with dataset errors", len(bad))
        records = [r for r in records if r.video_id not in bad]
    ids = [r.video_id for r in records]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise WsvadError(
            f"{cfg.root}: duplicate video ids in the {cfg.dataset} dataset: {', '.join(dup)}"
        )
    unusable = []
    for record in records:  # refused before any work, not by a worker in the middle of the run
        try:
            node_name(record.video_id)
        except WsvadError as exc:
            unusable.append(f"{record.rel_path}: {exc}")
    if unusable:
        raise WsvadError(
            f"{cfg.root}: {len(unusable)} video id(s) cannot name a store array: "
            f"{'; '.join(unusable[:3])}"
        )
    return records


def store_attrs(cfg: ExtractConfig) -> dict[str, Any]:
    """Store-level attrs of a resolved config (see docs/architecture.md)."""
    from wsvad.extract.backbones import get_backbone_spec

    spec = get_backbone_spec(cfg.backbone, **cfg.backbone_options)
    feature = cfg.feature_config()
    return {
        "provenance": {"kind": "extracted"},
        "dataset": cfg.dataset,
        "backbone": cfg.backbone,
        "backbone_options": cfg.backbone_options,
        "feature_shape": list(spec.feature_shape),
        "dtype": cfg.dtype,
        "weights_sha256": spec.weights_sha256,
        "snippet_len": cfg.snippet_len,
        "stride": cfg.stride,
        "tail": cfg.tail,
        "fps": cfg.fps,
        "resize": cfg.resize,
        "crop_size": cfg.crop_size,
        "crops": cfg.crops,
        "crop_order": crop_order(cfg.crops),
        "crop_order_note": (
            "flip-X = crop X of the horizontally flipped frame (torchvision ten_crop order)"
        ),
        "decoder": cfg.decoder,
        "precision": cfg.precision,
        "compute": compute_attrs(cfg),
        **segment_attrs(cfg),
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash({**feature, "weights_sha256": spec.weights_sha256}),
    }


def open_store(cfg: ExtractConfig) -> FeatureStore:
    """Create the store, or reopen it for resuming when its feature settings match ``cfg``."""
    if cfg.out is None:
        raise WsvadError("no output store given (--out STORE)")
    if cfg.overwrite and FeatureStore.is_store(cfg.out):
        # never delete a store another process is writing: take its lock first (refused if held)
        existing = FeatureStore.open(cfg.out)
        existing.acquire_lock()
        existing.release_lock()
    return FeatureStore.create(cfg.out, store_attrs(cfg), overwrite=cfg.overwrite)


def run_extract(
    cfg: ExtractConfig, progress: Callable[[ProgressEvent], None] | None = None
) -> ExtractSummary:
    """Extract features of every selected video of ``cfg.dataset`` into ``cfg.out``.

    Returns a summary; videos that failed are in ``summary.failures`` and in the store's failure
    table, and everything else is complete in the store.
    """
    began = time.perf_counter()
    if cfg.root is None:
        raise WsvadError("no dataset root given (--root DIR)")
    cfg = resolve_config(cfg)
    if cfg.device.startswith("cuda") and cfg.cluster.kind in THIS_MACHINE_KINDS:
        import torch

        if not torch.cuda.is_available():
            raise WsvadError(
                f"--device {cfg.device}: CUDA is not available on this machine (torch "
                f"{torch.__version__}); use --device cpu"
            )
    records = select_records(cfg)
    if cfg.shard is not None:
        # a job-array shard: the setup step made the store and owns its root metadata and .tmp
        # cleanup
        records = shard_records(records, cfg.shard)
        store = open_for_shard(cfg, store_attrs(cfg)["config_hash"])
    else:
        store = open_store(cfg)
    store.acquire_lock(lock_name(cfg))
    try:
        if cfg.shard is None:
            initialise_store(store, cfg, records)
        todo = [r for r in records if not store.has_video(r.video_id)]
        failures, frame_crops = _execute(cfg, store, todo, progress)
        done_now = [r.video_id for r in todo if r.video_id not in failures]
        store.record_failures({}, clear=done_now, writer=shard_writer(cfg))
        suspects = stored_suspects(store, done_now)
    # the client's own writes (attrs, failure table) on a full or read-only disk
    except OSError as exc:
        raise store_write_error(store.path, exc) from exc
    finally:
        store.release_lock(lock_name(cfg))
    return ExtractSummary(
        store.path,
        len(records),
        len(records) - len(todo),
        len(done_now),
        failures,
        frame_crops,
        time.perf_counter() - began,
        suspects,
        precision_line(cfg.device, cfg.precision),
    )


def stored_suspects(store: FeatureStore, video_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ``suspect`` attrs of the stored videos among ``video_ids`` that have one."""
    found = {vid: store.video_attrs(vid).get("suspect") for vid in video_ids}
    return {vid: suspect for vid, suspect in found.items() if suspect}


def _execute(
    cfg: ExtractConfig,
    store: FeatureStore,
    todo: list[VideoRecord],
    progress: Callable[[ProgressEvent], None] | None,
) -> tuple[dict[str, dict], int]:
    """Run every video of ``todo`` on the cluster; returns the failures and the frame-crops."""
    failures: dict[str, dict[str, Any]] = {}
    events = _ProgressEvents(len(todo), progress, failures)
    events.start()
    if not todo:
        return failures, 0
    with open_client(cfg.cluster) as runner:
        runner.subscribe(PROGRESS_TOPIC, events.on_batch)
        may_split = runner.n_workers > 1 and cfg.piece_snippets > 0
        tasks: dict[Any, Task] = {}
        for record in todo:
            task = Task("video", record, str(store.path), may_split=may_split)
            tasks[runner.submit(run_task, task, cfg)] = task
        frame_crops = _collect(runner, tasks, cfg, store, failures, events)
    return failures, frame_crops


def _collect(
    runner: Runner,
    tasks: dict[Any, Task],
    cfg: ExtractConfig,
    store: FeatureStore,
    failures: dict[str, dict[str, Any]],
    events: _ProgressEvents,
) -> int:
    """Handle results as tasks finish: a split video's pieces are submitted, then its assembly once
    every piece is back; failures are recorded. Returns the frame-crops of every task."""
    frame_crops = 0
    pieces: dict[str, dict[int, VideoResult]] = {}  # video id -> finished parts by start
    expected_pieces: dict[str, int] = {}
    for handle, result, exc in runner.results():
        task = tasks.pop(handle)
        vid = task.record.video_id
        if exc is not None:
            # a worker that died on this video, again and again, is the only failure blamed on the
            # video without a DecodeError; the rest (model, store, host) stops the run now
            if type(exc).__name__ != "KilledWorker":
                raise stop_error(exc, task.record.rel_path, cfg.backbone, cfg.device) from exc
            result = _killed_result(task, exc)
        frame_crops += result.frame_crops
        if vid in failures:  # a sibling piece failed earlier: discard this one's work
            remove_parts([result.part] if result.part else [])
            continue
        if result.status == "split":
            expected_pieces[vid] = len(result.pieces)
            pieces[vid] = {}
            for start, stop in result.pieces:
                piece = task._replace(kind="piece", start=start, stop=stop)
                tasks[runner.submit(run_task, piece, cfg)] = piece
            log.info("%s: split into %d pieces", vid, len(result.pieces))
            continue
        if result.status == "part":
            pieces[vid][result.start] = result
            if len(pieces[vid]) == expected_pieces[vid]:
                assemble = _assemble_task(task, pieces.pop(vid))
                tasks[runner.submit(run_task, assemble, cfg)] = assemble
            continue
        if result.status == "failed":
            _record_failure(store, cfg, failures, task, result)
            # a failed assembly (a suspect video under on_suspect: fail) leaves its parts too
            finished = [p.part for p in pieces.pop(vid, {}).values() if p.part]
            remove_parts([*finished, *task.parts])
            log.warning("%s: %s: %s", task.record.rel_path, result.exception, result.reason)
        events.video_finished(vid, result.status)
    return frame_crops


def _record_failure(
    store: FeatureStore,
    cfg: ExtractConfig,
    failures: dict[str, dict[str, Any]],
    task: Task,
    result: VideoResult,
) -> None:
    """Add a failed video to ``failures`` and to the store's failure table."""
    vid = task.record.video_id
    failures[vid] = {
        "video_id": vid,
        "source": task.record.rel_path,
        "exception": result.exception,
        "reason": result.reason,
        "decoder": result.decoders_tried,
    }
    store.record_failures({vid: failures[vid]}, writer=shard_writer(cfg))


class _ProgressEvents:
    """The run's progress events. Worker progress messages may arrive on another thread (dask's
    event loop) while results are handled, hence the lock."""

    def __init__(
        self,
        total: int,
        callback: Callable[[ProgressEvent], None] | None,
        failures: dict[str, dict[str, Any]],
    ) -> None:
        self.total = total
        self.callback = callback or (lambda event: None)
        self.failures = failures  # the run's failure table, counted in every event
        self.finished = 0
        self.frame_crops = 0  # from worker messages, updated between finished videos too
        self.guard = threading.Lock()

    def start(self) -> None:
        self.callback(ProgressEvent(self.total, 0, 0, 0))

    def on_batch(self, count: int) -> None:
        with self.guard:
            self.frame_crops += int(count)
            self.callback(
                ProgressEvent(self.total, self.finished, len(self.failures), self.frame_crops)
            )

    def video_finished(self, video_id: str, status: VideoOutcome) -> None:
        with self.guard:
            self.finished += 1
            self.callback(
                ProgressEvent(
                    self.total,
                    self.finished,
                    len(self.failures),
                    self.frame_crops,
                    video_id,
                    status,
                )
            )


def _killed_result(task: Task, exc: BaseException) -> VideoResult:
    """dask gave up on a task after ``cluster.allowed_failures`` restarts of the worker running it
    (a segfault in a decoder, memory exhausted by this video, or killed)."""
    tries = getattr(exc, "allowed_failures", 0) + 1
    reason = (
        f"the worker process died while extracting this video ({tries} attempts; segfault, "
        "out of memory or killed)"
    )
    return VideoResult(
        task.record.video_id,
        "failed",
        start=task.start,
        exception=type(exc).__name__,
        reason=reason,
        decoders_tried=None,
    )


def _assemble_task(task: Task, parts: dict[int, VideoResult]) -> Task:
    ordered = [parts[start] for start in sorted(parts)]
    ending = next(p for p in ordered if p.eof)
    decoders = sorted({p.decoder for p in ordered if p.decoder})
    facts = {
        "n_frames": ending.n_frames,
        "n_source_frames": ending.n_source_frames,
        "source_fps": ending.source_fps,
        "decoder": "+".join(decoders),
    }
    return task._replace(kind="assemble", parts=tuple(p.part for p in ordered), facts=facts)
