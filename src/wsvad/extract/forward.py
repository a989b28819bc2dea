"""The model loop of a worker: a prefetch thread decodes, crops and batches snippets into a bounded
queue while the model computes (torch and the decoders release the GIL, so the two overlap on
separate cores); feature rows reach the store in whole zarr chunks.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

import numpy as np

from wsvad.extract.accel import autocast, host_batch, to_device
from wsvad.extract.config import ExtractConfig
from wsvad.extract.crops import crop_batch
from wsvad.extract.faults import ForwardFailed
from wsvad.extract.snippets import SnippetStream
from wsvad.pipeline.cluster import report_progress
from wsvad.pipeline.store import VideoWriter

PROGRESS_TOPIC = "wsvad-extract-frame-crops"  # workers report frame-crops after every forward pass
FAULT_ENV = "WSVAD_FAULT_EXIT_ON"  # tests only, see _fault_point


def run_model(stream: SnippetStream, model, spec, cfg: ExtractConfig, writer: VideoWriter) -> int:
    """Drive the prefetch thread and the model; returns the number of snippets written."""
    import torch

    per_batch = max(1, cfg.batch_clips // cfg.crops)
    batches: queue.Queue = queue.Queue(maxsize=max(1, cfg.prefetch))
    stop = threading.Event()

    def send(pending: list[np.ndarray]) -> None:  # a batch (b*C, 3, L, S, S)
        clips = crop_batch(pending, cfg.crop_size, cfg.crops)  # (b*C, L, S, S, 3)
        _put(batches, stop, host_batch(spec.prepare(clips), cfg.device))

    def produce() -> None:
        try:
            pending: list[np.ndarray] = []
            for _, snippet in stream:  # snippet: (L, H, W, 3) resized frames
                if stop.is_set():  # the consumer failed: stop decoding
                    return
                pending.append(snippet)
                if len(pending) == per_batch:
                    send(pending)
                    pending = []
            if pending:
                send(pending)
            _put(batches, stop, None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            _put(batches, stop, exc)

    thread = threading.Thread(target=produce, name="wsvad-prefetch", daemon=True)
    thread.start()
    sink = ChunkSink(writer, cfg.chunk_t)
    try:
        while True:
            item = batches.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            try:
                with torch.inference_mode(), autocast(cfg):
                    out = model(to_device(item, cfg.device))  # (b*C, *F)
                out = out.float().cpu().numpy()
            except Exception as exc:  # the model's fault, never the video's (see faults.py)
                raise ForwardFailed() from exc
            report_progress(PROGRESS_TOPIC, len(out) * cfg.snippet_len)
            sink.add(out.reshape(-1, cfg.crops, *out.shape[1:]))  # -> (b, C, *F)
            _fault_point(writer.video_id)
        sink.flush()
    finally:
        stop.set()
        thread.join()
    return sink.rows


def _fault_point(video_id: str) -> None:
    """Fault injection for tests/reliability: ``WSVAD_FAULT_EXIT_ON=id1,id2`` makes the process
    extracting one of these videos die after a forward pass, as a segfault would (no cleanup, no
    exception)."""
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


class ChunkSink:
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
