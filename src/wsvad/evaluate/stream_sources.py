"""Where ``wsvad score --stream`` gets snippets, and the bounded buffer between reader and scorer.

Sources: a video file or frame folder (read as fast as the scorer takes it, or played at its own
frame rate with ``realtime``), a network stream PyAV can open (``udp://``, ``rtsp://``,
``http://``...) or a capture device (``/dev/video0``, opened with v4l2). Network streams and capture
devices are **live**: they set the pace. A reader thread decodes, resamples to the run's frame rate,
resizes and crops frame by frame and assembles snippets into a :class:`SnippetBuffer` of a few
snippets; when the scorer falls behind a live source the buffer drops its oldest snippet and counts
it, so memory stays bounded and the scores stay close to real time. A file that is not played in
real time never drops: the reader waits for the scorer.
"""

from __future__ import annotations

import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from wsvad.errors import WsvadError


class Source(NamedTuple):
    """An opened source: frames with their arrival time (``time.perf_counter()``)."""

    frames: Iterator[tuple[np.ndarray, float]]  # (RGB frame (H, W, 3) uint8, arrival time)
    fps: float | None
    live: bool  # the source sets the pace: a slow scorer makes the buffer drop snippets
    kind: str  # "file", "file (real time)", "network", "device"


class SnippetItem(NamedTuple):
    index: int  # snippet index on the scoring timeline
    snippet: np.ndarray  # (L, C, S, S, 3) uint8 crops
    ready: float  # perf_counter when its last frame arrived (latency starts here)


def source_kind(source: str) -> str:
    """``network`` for a URL, ``device`` for a capture device path, else ``file``.

    >>> source_kind("udp://127.0.0.1:5000"), source_kind("/dev/video0"), source_kind("a.mp4")
    ('network', 'device', 'file')
    """
    path = Path(source)
    if "://" in source and not path.exists():
        return "network"
    if source.startswith("/dev/video") or (path.exists() and stat.S_ISCHR(path.stat().st_mode)):
        return "device"
    return "file"


def open_source(source: str, decoder: str = "auto", realtime: bool = False, timeout: float = 10.0):
    """Open ``source`` (see the module docstring); ``timeout`` seconds without data end a live
    source. Returns a :class:`Source`."""
    kind = source_kind(source)
    if kind == "file":
        from wsvad.evaluate.score_video import _frames

        frames, fps = _frames(source, decoder)
        if not realtime:
            return Source(((f, time.perf_counter()) for f in frames), fps, False, "file")
        if not fps:
            raise WsvadError(f"{source}: unknown frame rate, cannot play it in real time")
        return Source(_paced(frames, fps), fps, True, "file (real time)")
    if kind == "device" and not Path(source).exists():
        raise WsvadError(f"{source}: no such capture device")
    return _open_av(source, kind, timeout)


def _paced(frames: Iterator[np.ndarray], fps: float) -> Iterator[tuple[np.ndarray, float]]:
    """Frame ``k`` released at ``t0 + k / fps`` (a camera's schedule); its arrival is that time."""
    t0 = time.perf_counter()
    for k, frame in enumerate(frames):
        due = t0 + k / fps
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        yield frame, due


def _open_av(source: str, kind: str, timeout: float) -> Source:
    import av

    try:
        container = av.open(
            source, format="v4l2" if kind == "device" else None, timeout=(timeout, timeout)
        )
    except (av.FFmpegError, OSError) as exc:
        raise WsvadError(f"{source}: cannot open ({type(exc).__name__}: {exc})") from exc
    if not container.streams.video:
        container.close()
        raise WsvadError(f"{source}: no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    return Source(_decode_live(container, stream), float(rate) if rate else None, True, kind)


def _decode_live(container: Any, stream: Any) -> Iterator[tuple[np.ndarray, float]]:
    import av

    with container:
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24"), time.perf_counter()
        except (av.error.ExitError, av.error.TimeoutError, av.error.EOFError, av.error.OSError):
            # No data for `timeout` seconds (udp never says it ended) or the sender closed the
            # connection (http, rtsp): the end of a live stream. The decoder still holds the
            # frames it was given last (B-frame reordering): flush them, as a file's end would.
            for frame in stream.codec_context.decode(None):
                yield frame.to_ndarray(format="rgb24"), time.perf_counter()
        except av.FFmpegError as exc:
            raise WsvadError(f"{container.name}: stream broken ({exc})") from exc


class SnippetBuffer:
    """Bounded FIFO of :class:`SnippetItem` between the reader thread and the scorer.

    ``put`` on a full buffer drops the oldest item and counts it in :attr:`dropped` when ``drop``
    (live sources), else waits for room. ``get`` returns ``None`` once the reader has finished and
    the buffer is empty, and re-raises an error the reader ended with.
    """

    def __init__(self, size: int, drop: bool) -> None:
        if size < 1:
            raise ValueError(f"buffer size must be >= 1, got {size}")
        self.size, self.drop = size, drop
        self.items: deque[SnippetItem] = deque()
        self.dropped = 0
        self.closed = False
        self.error: BaseException | None = None
        self.cond = threading.Condition()

    def put(self, item: SnippetItem) -> None:
        with self.cond:
            while len(self.items) >= self.size:
                if self.drop:
                    self.items.popleft()
                    self.dropped += 1
                else:
                    self.cond.wait(0.1)
                    if self.closed:
                        return
            self.items.append(item)
            self.cond.notify_all()

    def get(self) -> SnippetItem | None:
        with self.cond:
            while not self.items and not self.closed:
                self.cond.wait(0.1)
            if self.items:
                item = self.items.popleft()
                self.cond.notify_all()
                return item
            if self.error is not None:
                raise self.error
            return None

    def close(self, error: BaseException | None = None) -> None:
        """No more items (the reader finished or the scorer stopped); ``error`` ended the reader."""
        with self.cond:
            self.closed = True
            self.error = self.error or error
            self.cond.notify_all()


def start_reader(
    source: Source,
    to_snippets: Callable[[Iterator[np.ndarray]], Iterator[tuple[int, np.ndarray]]],
    buffer: SnippetBuffer,
    stop: threading.Event,
) -> threading.Thread:
    """Start the reader thread: ``source`` frames -> ``to_snippets`` -> ``buffer``; it ends at the
    end of the source or when ``stop`` is set, and then closes the buffer."""
    arrival = [0.0]  # arrival time of the latest frame pulled from the source

    def frames() -> Iterator[np.ndarray]:
        for frame, arrived in source.frames:
            if stop.is_set():
                return
            arrival[0] = arrived
            yield frame

    def read() -> None:
        try:
            for index, snippet in to_snippets(frames()):
                buffer.put(SnippetItem(index, snippet, arrival[0]))
                if stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the scorer, which raises it
            buffer.close(exc)
            return
        buffer.close()

    thread = threading.Thread(target=read, name="wsvad-stream-reader", daemon=True)
    thread.start()
    return thread


__all__ = ["SnippetBuffer", "SnippetItem", "Source", "open_source", "source_kind", "start_reader"]
