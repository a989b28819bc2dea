"""What runs on a worker: decode -> resize/crop -> snippets -> backbone -> the worker's own store writes.

Tasks return a small :class:`VideoResult`; features never travel through the scheduler. Decoding,
resizing and cropping run in a prefetch thread that fills a bounded queue while the model computes
(torch and the decoders release the GIL, so the two overlap on separate cores).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from wsvad.data.records import VideoRecord
from wsvad.errors import WsvadError
from wsvad.extract.accel import autocast, check_device, host_batch, prepare_model, to_device
from wsvad.extract.config import ExtractConfig
from wsvad.extract.crops import resize_and_crop
from wsvad.extract.decode import (
    DecodeError,
    decode_errors,
    fps_ratio,
    is_frame_folder,
    iter_frames,
    probe,
    resample,
    resampled_count,
    source_index,
)
from wsvad.extract.segments import publish
from wsvad.extract.snippets import SnippetStream, n_snippets
from wsvad.pipeline.cluster import report_progress
from wsvad.pipeline.store import FeatureStore, VideoWriter

log = logging.getLogger(__name__)

_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()
_RESIZE_WINDOW = 16  # frames resized per torch call: amortises call overhead, bounds memory
PROGRESS_TOPIC = "wsvad-extract-frame-crops"  # workers report frame-crops after every forward pass
FAULT_ENV = "WSVAD_FAULT_EXIT_ON"  # tests only, see _fault_point


class TooShort(DecodeError):
    """The video decoded fine but yields no snippet (another decoder would not change that)."""


class Task(NamedTuple):
    """One unit of work: a whole video, one piece of a long video, or the assembly of its pieces."""

    kind: str  # "video" | "piece" | "assemble"
    record: VideoRecord
    store: str
    start: int = 0  # snippet range of a piece
    stop: int | None = None
    may_split: bool = False
    parts: tuple[str, ...] = ()  # assemble: part arrays in snippet order
    facts: dict | None = None  # assemble: frame counts and decoders reported by the pieces


class VideoResult(NamedTuple):
    """The small record a task sends back (no features)."""

    video_id: str
    status: str  # "done" | "part" | "split" | "failed"
    start: int = 0
    n_snippets: int = 0
    frame_crops: int = 0  # snippets x L x crops that went through the model
    seconds: float = 0.0
    decoder: str | None = None
    eof: bool = False
    n_frames: int | None = None  # frames after fps resampling (the snippet timeline)
    n_source_frames: int | None = None  # decoded frames of the source
    source_fps: float | None = None
    part: str | None = None
    pieces: tuple[tuple[int, int | None], ...] = ()
    exception: str | None = None
    reason: str | None = None
    decoders_tried: str | None = None


def get_model(cfg: ExtractConfig):
    """The backbone of this worker process, built once and reused by every task."""
    key = (
        cfg.backbone,
        cfg.device,
        cfg.compile,
        json.dumps(cfg.backbone_options, sort_keys=True, default=str),
    )
    with _MODELS_LOCK:
        if key not in _MODELS:
            from wsvad.extract.backbones import build_backbone, get_backbone_spec

            try:
                check_device(cfg.device)
                model = build_backbone(cfg.backbone, device=cfg.device, **cfg.backbone_options)
                _MODELS[key] = (
                    prepare_model(model, cfg),
                    get_backbone_spec(cfg.backbone, **cfg.backbone_options),
                )
            except WsvadError:
                raise
            except Exception as exc:  # never the video's fault: the run stops with this message
                raise WsvadError(
                    f"backbone {cfg.backbone!r} on {cfg.device}: cannot be built ({one_line(exc)})"
                ) from exc
        return _MODELS[key]


def run_task(task: Task, cfg: ExtractConfig) -> VideoResult:
    """Entry point submitted to the cluster; undecodable input becomes a ``failed`` result."""
    import torch

    torch.set_num_threads(cfg.torch_threads)
    began = time.perf_counter()
    tried: list[str] = []
    try:
        if task.kind == "assemble":
            result = _assemble(task, cfg)
        else:
            result = _extract(task, cfg, tried)
    except decode_errors() as exc:
        return VideoResult(
            task.record.video_id,
            "failed",
            start=task.start,
            exception=type(exc).__name__,
            reason=one_line(exc),
            decoders_tried=",".join(tried) or None,
            seconds=time.perf_counter() - began,
        )
    return result._replace(seconds=time.perf_counter() - began)


def one_line(exc: BaseException) -> str:
    """A short single-line reason (FFmpeg's "[Errno 1094995529]" prefix says nothing to a user)."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", " ".join(str(exc).split()))
    return (text or type(exc).__name__)[:300]


def _decoders(cfg: ExtractConfig, path: Path) -> list[str]:
    if is_frame_folder(path):
        return ["frames"]
    return ["decord", "av"] if cfg.decoder == "auto" else [cfg.decoder]


def _extract(task: Task, cfg: ExtractConfig, tried: list[str]) -> VideoResult:
    record = task.record
    chain = _decoders(cfg, record.path)
    for attempt, decoder in enumerate(chain):
        tried.append(decoder)
        try:
            return _extract_with(task, cfg, decoder)
        except decode_errors() as exc:
            if attempt + 1 == len(chain) or isinstance(exc, TooShort):
                raise
            log.warning(
                "%s: %s failed (%s: %s); retrying with %s",
                record.rel_path,
                decoder,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                chain[attempt + 1],
            )
    raise AssertionError("unreachable: the decoder chain is never empty")


def _extract_with(task: Task, cfg: ExtractConfig, decoder: str) -> VideoResult:
    record = task.record
    info = probe(record.path, decoder, fps_hint=record.fps)
    ratio = fps_ratio(info.fps, cfg.fps) if cfg.fps else None
    store = FeatureStore.open(task.store)
    if task.kind == "video" and task.may_split and cfg.piece_snippets:
        hint = resampled_count(info.n_frames_hint, ratio) if ratio else info.n_frames_hint
        estimate = n_snippets(hint, cfg.snippet_len, cfg.stride, cfg.tail)
        if estimate > cfg.piece_snippets * 3 // 2:
            step = cfg.piece_snippets
            cuts = list(range(0, estimate - step // 2, step))
            pieces = tuple((a, b) for a, b in zip(cuts, cuts[1:])) + ((cuts[-1], None),)
            return VideoResult(record.video_id, "split", decoder=info.decoder, pieces=pieces)
    start, stop = (task.start, task.stop) if task.kind == "piece" else (0, None)
    model, spec = get_model(cfg)
    counter = _Counter()

    def frames(first_output: int) -> Iterator[np.ndarray]:
        first_source = source_index(first_output, ratio) if ratio else first_output
        counter.first = first_source
        decoded = counter.count(iter_frames(record.path, info.decoder, start=first_source))
        timeline = resample(decoded, ratio, first_source, first_output) if ratio else decoded
        return _crops(timeline, cfg)

    def head() -> list[np.ndarray]:
        source = iter_frames(record.path, info.decoder)
        timeline = resample(source, ratio, 0, 0) if ratio else source
        return list(islice(_crops(timeline, cfg), cfg.snippet_len))

    stream = SnippetStream(
        frames(start * cfg.stride), cfg.snippet_len, cfg.stride, cfg.tail, start, stop, head
    )
    writer = store.writer(record.video_id, chunk_t=cfg.chunk_t)
    try:
        rows = _run_model(stream, model, spec, cfg, writer)
        n_source = counter.first + counter.n if stream.eof else None
        if task.kind == "piece":
            part = str(writer.tmp_dir)
            return VideoResult(
                record.video_id,
                "part",
                start=start,
                n_snippets=rows,
                decoder=info.decoder,
                frame_crops=rows * cfg.snippet_len * cfg.crops,
                eof=stream.eof,
                n_frames=stream.n_frames,
                n_source_frames=n_source,
                source_fps=info.fps,
                part=part,
            )
        expected = n_snippets(stream.n_frames, cfg.snippet_len, cfg.stride, cfg.tail)
        _check_rows(record, rows, expected, stream.n_frames, cfg)
        publish(
            store,
            writer,
            video_attrs(record, cfg, stream.n_frames, n_source, info.fps, info.decoder),
            cfg,
        )
        return VideoResult(
            record.video_id,
            "done",
            n_snippets=rows,
            decoder=info.decoder,
            eof=True,
            frame_crops=rows * cfg.snippet_len * cfg.crops,
            n_frames=stream.n_frames,
            n_source_frames=n_source,
            source_fps=info.fps,
        )
    except BaseException:
        writer.abort()
        raise


def _check_rows(
    record: VideoRecord, rows: int, expected: int, n_frames: int, cfg: ExtractConfig
) -> None:
    if n_frames == 0:
        raise DecodeError(f"{record.rel_path}: no frame could be decoded", "none")
    if expected == 0:
        raise TooShort(
            f"{record.rel_path}: {n_frames} frames is shorter than one {cfg.snippet_len}-frame "
            f"snippet (tail=drop keeps no snippet)",
            "none",
        )
    if rows != expected:
        raise AssertionError(
            f"{record.video_id}: wrote {rows} snippets, expected {expected} for {n_frames} frames"
        )


class _Counter:
    """Counts the frames a decoder produced (the true frame count when the stream ends)."""

    def __init__(self) -> None:
        self.first = 0
        self.n = 0

    def count(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            self.n += 1
            yield frame


def _crops(frames: Iterator[np.ndarray], cfg: ExtractConfig) -> Iterator[np.ndarray]:
    """Per-frame crops ``[C, S, S, 3]``; frames are resized in small windows to amortise torch calls."""
    while True:
        window = list(islice(frames, _RESIZE_WINDOW))
        if not window:
            return
        try:
            stacked = np.stack(window)  # (N, H, W, 3)
        except ValueError as exc:
            raise DecodeError(f"frame size changes inside the video ({exc})", "any") from exc
        yield from resize_and_crop(stacked, cfg.resize, cfg.crop_size, cfg.crops)


def _run_model(stream: SnippetStream, model, spec, cfg: ExtractConfig, writer: VideoWriter) -> int:
    """Drive the prefetch thread and the model; returns the number of snippets written."""
    import torch

    per_batch = max(1, cfg.batch_clips // cfg.crops)
    batches: queue.Queue = queue.Queue(maxsize=max(1, cfg.prefetch))
    stop = threading.Event()

    def produce() -> None:
        try:
            pending: list[np.ndarray] = []
            for _, snippet in stream:  # snippet: (L, C, S, S, 3)
                if stop.is_set():  # the consumer failed: stop decoding
                    return
                pending.append(snippet.transpose(1, 0, 2, 3, 4))  # -> (C, L, S, S, 3)
                if len(pending) == per_batch:
                    _put(
                        batches, stop, host_batch(spec.prepare(np.concatenate(pending)), cfg.device)
                    )
                    pending = []
            if pending:
                _put(
                    batches, stop, host_batch(spec.prepare(np.concatenate(pending)), cfg.device)
                )  # (b*C, 3, L, S, S)
            _put(batches, stop, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            _put(batches, stop, exc)

    thread = threading.Thread(target=produce, name="wsvad-prefetch", daemon=True)
    thread.start()
    sink = _ChunkSink(writer, cfg.chunk_t)
    try:
        while True:
            item = batches.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            with torch.inference_mode(), autocast(cfg):
                out = model(to_device(item, cfg.device))  # (b*C, *F)
            out = out.float().cpu().numpy()
            report_progress(PROGRESS_TOPIC, len(out) * cfg.snippet_len)
            sink.add(out.reshape(-1, cfg.crops, *out.shape[1:]))  # -> (b, C, *F)
            _fault_point(writer.video_id)
        sink.flush()
    finally:
        stop.set()
        thread.join()
    return sink.rows


def _fault_point(video_id: str) -> None:
    """Fault injection for tests/reliability: ``WSVAD_FAULT_EXIT_ON=id1,id2`` makes the process extracting
    one of these videos die after a forward pass, as a segfault would (no cleanup, no exception)."""
    targets = os.environ.get(FAULT_ENV)
    if targets and video_id in targets.split(","):
        os._exit(70)


def _put(target: queue.Queue, stop: threading.Event, item: Any) -> None:
    while not stop.is_set():
        try:
            target.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class _ChunkSink:
    """Buffers rows so every zarr chunk is written once (appending single rows rewrites chunks)."""

    def __init__(self, writer: VideoWriter, chunk_t: int):
        self.writer, self.chunk_t = writer, chunk_t
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.rows = 0

    def add(self, rows: np.ndarray) -> None:
        self.buffer.append(rows)
        self.buffered += len(rows)
        self.rows += len(rows)
        if self.buffered >= self.chunk_t:
            joined = np.concatenate(self.buffer)
            full = len(joined) // self.chunk_t * self.chunk_t
            self.writer.append(joined[:full])
            self.buffer, self.buffered = [joined[full:]], len(joined) - full

    def flush(self) -> None:
        if self.buffered:
            self.writer.append(np.concatenate(self.buffer))
        self.buffer, self.buffered = [], 0


def video_attrs(
    record: VideoRecord,
    cfg: ExtractConfig,
    n_frames: int,
    n_source: int | None,
    source_fps: float | None,
    decoder: str,
) -> dict[str, Any]:
    """Per-video store attrs: provenance of the source plus the dataset's label facts."""
    path = Path(record.path)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file()]
        size = sum(p.stat().st_size for p in files)
    else:
        size = path.stat().st_size
    attrs = {
        "source": record.rel_path,
        "source_size": int(size),
        "source_mtime": path.stat().st_mtime,
        "n_frames": int(n_source if n_source is not None else n_frames),
        "n_frames_sampled": int(n_frames),
        "fps": float(cfg.fps) if cfg.fps else source_fps,
        "source_fps": source_fps,
        "decoder": decoder,
    }
    attrs.update(record.to_attrs())
    return attrs


def _assemble(task: Task, cfg: ExtractConfig) -> VideoResult:
    """Concatenate the parts of a split video into its final array and publish it atomically."""
    import zarr

    record, facts = task.record, task.facts or {}
    store = FeatureStore.open(task.store)
    n_frames = int(facts["n_frames"])
    expected = n_snippets(n_frames, cfg.snippet_len, cfg.stride, cfg.tail)
    with store.writer(record.video_id, chunk_t=cfg.chunk_t) as writer:
        sink = _ChunkSink(writer, cfg.chunk_t)
        for part in task.parts:
            array = zarr.open_array(part, mode="r")
            for begin in range(0, array.shape[0], cfg.chunk_t):
                sink.add(array[begin : begin + cfg.chunk_t])
        sink.flush()
        _check_rows(record, sink.rows, expected, n_frames, cfg)
        publish(
            store,
            writer,
            video_attrs(
                record,
                cfg,
                n_frames,
                facts.get("n_source_frames"),
                facts.get("source_fps"),
                facts["decoder"],
            ),
            cfg,
        )
    for part in task.parts:
        shutil.rmtree(part, ignore_errors=True)
    return VideoResult(
        record.video_id,
        "done",
        n_snippets=sink.rows,
        decoder=facts["decoder"],
        eof=True,
        n_frames=n_frames,
        n_source_frames=facts.get("n_source_frames"),
    )


def remove_parts(parts: list[str]) -> None:
    """Delete the part arrays of a video whose other pieces failed (client side)."""
    for part in parts:
        if os.path.isdir(part):
            shutil.rmtree(part, ignore_errors=True)
