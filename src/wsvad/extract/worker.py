"""What runs on a worker: decode -> resize/crop -> snippets -> backbone -> the worker's own store
writes.

Tasks return a small :class:`VideoResult`; features never travel through the scheduler. The model
loop (a prefetch thread decodes while the model computes) is in forward.py.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from itertools import islice, pairwise
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from wsvad.data.records import VideoRecord
from wsvad.data.suspects import suspect_of
from wsvad.errors import WsvadError
from wsvad.extract.accel import check_device, prepare_model
from wsvad.extract.config import ExtractConfig
from wsvad.extract.crops import resize_frames, resized_shape
from wsvad.extract.decode import (
    DecodeError,
    Decoder,
    VideoInfo,
    fps_ratio,
    is_frame_folder,
    iter_frames,
    probe,
    resample,
    resampled_count,
    source_index,
)
from wsvad.extract.faults import one_line, stop_error
from wsvad.extract.forward import ChunkSink, run_model
from wsvad.extract.segments import publish
from wsvad.extract.snippets import SnippetStream, n_snippets
from wsvad.pipeline.store import FeatureStore

log = logging.getLogger(__name__)

_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()
_RESIZE_WINDOW = 16  # frames resized per torch call: amortises call overhead, bounds memory

# A task extracts a whole video, one piece (a snippet range) of a long video, or assembles the
# pieces of a video into its final array.
TaskKind = Literal["video", "piece", "assemble"]
# How a video ends; ProgressEvent.status and the summary report these.
VideoOutcome = Literal["done", "failed"]
# What a task reports: a finished video, a finished piece ("part"), the pieces a long video is to be
# cut into ("split"), or a failure.
TaskStatus = Literal[VideoOutcome, "part", "split"]


class TooShort(DecodeError):
    """The video decoded fine but yields no snippet (another decoder would not change that)."""


class SuspectVideo(TooShort):
    """Decoded, but not as long as its container declares, and ``on_suspect: fail`` (another
    decoder reads the same bytes, so none is tried)."""


class Task(NamedTuple):
    """One unit of work: a whole video, one piece of a long video, or the assembly of its pieces."""

    kind: TaskKind
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
    status: TaskStatus
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
    """Entry point submitted to the cluster. A video the readers cannot decode becomes a ``failed``
    result; anything else (model, store, host, bug) raises the WsvadError that stops the run."""
    import torch

    torch.set_num_threads(cfg.torch_threads)
    began = time.perf_counter()
    tried: list[str] = []
    try:
        if task.kind == "assemble":
            result = _assemble(task, cfg)
        else:
            result = _extract(task, cfg, tried)
    except DecodeError as exc:
        return VideoResult(
            task.record.video_id,
            "failed",
            start=task.start,
            exception=exc.kind,
            reason=one_line(exc),
            decoders_tried=",".join(tried) or None,
            seconds=time.perf_counter() - began,
        )
    except Exception as exc:
        raise stop_error(exc, task.record.rel_path, cfg.backbone, cfg.device) from exc
    return result._replace(seconds=time.perf_counter() - began)


def _decoders(cfg: ExtractConfig, path: Path) -> list[Decoder]:
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
        except DecodeError as exc:
            if attempt + 1 == len(chain) or isinstance(exc, TooShort):
                raise
            log.warning(
                "%s: %s failed (%s: %s); retrying with %s",
                record.rel_path,
                decoder,
                exc.kind,
                str(exc).splitlines()[0] if str(exc) else "",
                chain[attempt + 1],
            )
    raise AssertionError("unreachable: the decoder chain is never empty")


def _extract_with(task: Task, cfg: ExtractConfig, decoder: Decoder) -> VideoResult:
    """Extract ``task`` (a whole video or one piece) with ``decoder``, or plan its pieces."""
    record = task.record
    info = probe(record.path, decoder, fps_hint=record.fps)
    ratio = _fps_ratio(record, info, cfg)
    store = FeatureStore.open(task.store)
    pieces = _plan_pieces(task, cfg, info, ratio)
    if pieces:
        return VideoResult(record.video_id, "split", decoder=info.decoder, pieces=pieces)
    start, stop = (task.start, task.stop) if task.kind == "piece" else (0, None)
    model, spec = get_model(cfg)
    counter = _Counter()
    stream = _snippet_stream(record, info.decoder, ratio, cfg, counter, start, stop)
    writer = store.writer(record.video_id, chunk_t=cfg.chunk_t)
    try:
        rows = run_model(stream, model, spec, cfg, writer)
        n_source = counter.first + counter.n if stream.eof else None
        measured = _measured(info, cfg, rows, stream, n_source)
        if task.kind == "piece":
            part = str(writer.tmp_dir)
            return VideoResult(
                record.video_id, "part", start=start, eof=stream.eof, part=part, **measured
            )
        expected = n_snippets(stream.n_frames, cfg.snippet_len, cfg.stride, cfg.tail)
        _check_rows(record, rows, expected, stream.n_frames, cfg)
        attrs = video_attrs(record, cfg, stream.n_frames, n_source, info.fps, info.decoder)
        publish(store, writer, attrs, cfg)
        return VideoResult(record.video_id, "done", eof=True, **measured)
    except BaseException:
        writer.abort()
        raise


def _fps_ratio(record: VideoRecord, info: VideoInfo, cfg: ExtractConfig) -> Fraction | None:
    """Source frames per output frame; a video without a frame rate cannot be resampled."""
    if not cfg.fps:
        return None
    if not info.fps or info.fps <= 0:
        raise DecodeError(
            f"{record.rel_path}: the source fps is unknown, so the video cannot be resampled to "
            f"{cfg.fps:g} fps",
            info.decoder,
        )
    return fps_ratio(info.fps, cfg.fps)


def _plan_pieces(
    task: Task, cfg: ExtractConfig, info: VideoInfo, ratio: Fraction | None
) -> tuple[tuple[int, int | None], ...]:
    """The snippet ranges a long video is cut into, one task each; ``()``: one task does it all.

    The length is the header's estimate, so the last piece is open-ended (``stop=None``).
    """
    if not (task.kind == "video" and task.may_split and cfg.piece_snippets):
        return ()
    hint = resampled_count(info.n_frames_hint, ratio) if ratio else info.n_frames_hint
    estimate = n_snippets(hint, cfg.snippet_len, cfg.stride, cfg.tail)
    if estimate <= cfg.piece_snippets * 3 // 2:
        return ()
    step = cfg.piece_snippets
    cuts = list(range(0, estimate - step // 2, step))
    return (*pairwise(cuts), (cuts[-1], None))


def _snippet_stream(
    record: VideoRecord,
    decoder: Decoder,
    ratio: Fraction | None,
    cfg: ExtractConfig,
    counter: _Counter,
    start: int,
    stop: int | None,
) -> SnippetStream:
    """Snippets ``start`` to ``stop`` of the video, resampled to ``cfg.fps`` when ``ratio`` is set;
    ``counter`` counts the decoded source frames."""

    def frames(first_output: int) -> Iterator[np.ndarray]:
        first_source = source_index(first_output, ratio) if ratio else first_output
        counter.first = first_source
        decoded = counter.count(iter_frames(record.path, decoder, start=first_source))
        timeline = resample(decoded, ratio, first_source, first_output) if ratio else decoded
        return _resized(timeline, cfg)

    def head() -> list[np.ndarray]:
        source = iter_frames(record.path, decoder)
        timeline = resample(source, ratio, 0, 0) if ratio else source
        return list(islice(_resized(timeline, cfg), cfg.snippet_len))

    first = frames(start * cfg.stride)
    return SnippetStream(first, cfg.snippet_len, cfg.stride, cfg.tail, start, stop, head)


def _measured(
    info: VideoInfo, cfg: ExtractConfig, rows: int, stream: SnippetStream, n_source: int | None
) -> dict[str, Any]:
    """The result fields of a video or piece that went through the model."""
    return {
        "n_snippets": rows,
        "decoder": info.decoder,
        "frame_crops": rows * cfg.snippet_len * cfg.crops,
        "n_frames": stream.n_frames,
        "n_source_frames": n_source,
        "source_fps": info.fps,
    }


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


def _resized(frames: Iterator[np.ndarray], cfg: ExtractConfig) -> Iterator[np.ndarray]:
    """Frames resized to ``cfg.resize`` ``[h, w, 3]`` (views of a window); resized in small
    windows to amortise torch calls. The crops are taken later, as views (crops.crop_batch)."""
    while True:
        window = list(islice(frames, _RESIZE_WINDOW))
        if not window:
            return
        try:
            stacked = np.stack(window)  # (N, H, W, 3)
        except ValueError as exc:
            raise DecodeError(f"frame size changes inside the video ({exc})", "any") from exc
        height, width = stacked.shape[1:3]
        yield from resize_frames(stacked, resized_shape(height, width, cfg.resize))


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
    suspect = suspect_of(path, n_source, source_fps)
    if suspect and cfg.on_suspect == "fail":
        raise SuspectVideo(f"suspect video: {suspect['reason']}", decoder)
    attrs["suspect"] = suspect  # None: checked, agrees with its container (or declares nothing)
    return attrs


def _assemble(task: Task, cfg: ExtractConfig) -> VideoResult:
    """Concatenate the parts of a split video into its final array and publish it atomically."""
    import zarr

    record, facts = task.record, task.facts or {}
    store = FeatureStore.open(task.store)
    n_frames = int(facts["n_frames"])
    expected = n_snippets(n_frames, cfg.snippet_len, cfg.stride, cfg.tail)
    with store.writer(record.video_id, chunk_t=cfg.chunk_t) as writer:
        sink = ChunkSink(writer, cfg.chunk_t)
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
