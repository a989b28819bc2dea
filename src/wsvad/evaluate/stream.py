"""``wsvad score --stream SOURCE``: score a file, a network stream or a capture device snippet by
snippet as the frames arrive, with the causal rule of ``wsvad.detectors.causal``.

Snippet ``i`` is scored from the last ``W`` scored snippets' features with the run's offline rule
(:class:`CausalScorer`), as soon as its last frame has arrived. Each result is an event, a plain
dict handed to ``emit`` (the CLI prints it for people or as one JSON line):

* ``start``: source, run, detector, frame rate, the causal rule (window, ``exact``, what the offline
  score needs) and the interval options;
* ``snippet``: ``index``, ``start_frame`` / ``end_frame`` (half-open), ``start`` / ``time``
  (seconds of its first frame / after its last frame on the source's timeline), ``score``,
  ``wall`` (Unix time of the score), ``latency`` (seconds from its last frame's arrival to its
  score), ``compute`` (seconds of backbone and detector for this snippet), ``dropped``
  (snippets dropped so far because the scorer fell behind);
* ``interval_start`` / ``interval_end``: anomalous intervals (:class:`IntervalTracker`);
* ``end``: why it ended (``end of stream``, ``interrupted`` or ``error``), counts, latency
  percentiles.

Times are seconds; when the source has no frame rate they are frame numbers (``time_unit``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from wsvad.detectors.causal import CausalRule, causal_rule
from wsvad.errors import WsvadError

Emit = Callable[[dict[str, Any]], None]
# (n, C, *F) raw snippet features of one video -> (n,) snippet scores: the run's offline rule
OfflineScores = Callable[[np.ndarray], np.ndarray]


class StreamOptions(NamedTuple):
    window: int | None = None  # W; None: the detector's default (wsvad.detectors.causal)
    threshold: float = 0.5  # an interval opens at a score >= threshold
    hysteresis: float = 0.0  # ... and closes at a score < threshold - hysteresis
    min_duration: float = 0.0  # seconds an interval must last before it is reported
    buffer: int = 2  # snippets held between reader and scorer (live sources drop beyond)
    realtime: bool = False  # play a file at its own frame rate (it then drops like a live source)
    timeout: float = 10.0  # seconds without data that end a network stream or device
    decoder: str = "auto"
    device: str = "cpu"
    crops: int | None = None
    precision: str | None = None  # fp32 | bf16; None: the store's


class CausalScorer:
    """The causal score: ``offline(x[i - W + 1 : i + 1])[-1]`` over the scored snippets."""

    def __init__(self, offline: OfflineScores, window: int) -> None:
        self.offline = offline
        self.window: deque[np.ndarray] = deque(maxlen=window if window > 0 else None)

    def push(self, features: np.ndarray) -> float:
        """Add snippet ``i``'s ``(C, *F)`` features and return its causal score."""
        self.window.append(features)
        return float(self.offline(np.stack(self.window))[-1])


class IntervalTracker:
    """Anomalous intervals with hysteresis: one opens at the first snippet scored ``>= threshold``
    and closes at the first snippet scored ``< threshold - hysteresis``; it is reported
    (``interval_start``) once it has lasted ``min_duration`` seconds, and then ended
    (``interval_end``) when it closes or the stream ends. Shorter ones are not reported."""

    def __init__(self, threshold: float, hysteresis: float = 0.0, min_duration: float = 0.0):
        if hysteresis < 0 or hysteresis > threshold:
            raise WsvadError(f"hysteresis {hysteresis} must be in [0, threshold = {threshold}]")
        self.on, self.off, self.min_duration = threshold, threshold - hysteresis, min_duration
        self.start: float | None = None  # start time of the open interval
        self.end = 0.0
        self.peak = 0.0
        self.reported = False

    def update(self, index: int, start: float, end: float, score: float) -> list[dict[str, Any]]:
        """Events caused by snippet ``index`` covering ``[start, end)`` with ``score``."""
        events: list[dict[str, Any]] = []
        if self.start is None:
            if score < self.on:
                return events
            self.start, self.peak, self.reported = start, score, False
        elif score < self.off:
            return self.finish()
        self.end, self.peak = end, max(self.peak, score)
        if not self.reported and self.end - self.start >= self.min_duration:
            self.reported = True
            events.append(
                {
                    "event": "interval_start",
                    "time": self.start,
                    "snippet": index,
                    "score": score,
                    "threshold": self.on,
                    "off_threshold": self.off,  # it ends at the first score below this
                    "min_duration": self.min_duration,
                }
            )
        return events

    def finish(self) -> list[dict[str, Any]]:
        """Close the open interval (at a low score or the end of the stream)."""
        events = []
        if self.start is not None and self.reported:
            events.append(
                {
                    "event": "interval_end",
                    "time": self.end,
                    "start": self.start,
                    "duration": self.end - self.start,
                    "peak": self.peak,
                }
            )
        self.start = None
        return events


class Timeline(NamedTuple):
    snippet_len: int
    stride: int
    fps: float | None

    def span(self, index: int) -> tuple[float, float]:
        """Start of snippet ``index``'s first frame and end of its last one (seconds, or frames)."""
        first = index * self.stride
        rate = self.fps or 1.0
        return first / rate, (first + self.snippet_len) / rate


class StreamSummary(NamedTuple):
    reason: str  # "end of stream" | "interrupted"
    snippets: list[dict[str, Any]]  # the snippet events
    dropped: int
    intervals: int


def score_items(
    next_item: Callable[[], Any],
    features: Callable[[np.ndarray], np.ndarray],
    scorer: CausalScorer,
    timeline: Timeline,
    tracker: IntervalTracker,
    emit: Emit,
    snippets: list[dict[str, Any]],
    dropped: Callable[[], int] = lambda: 0,
) -> int:
    """The scoring loop: take snippets (``next_item() -> SnippetItem | None``) until the source
    ends, score each causally, emit its events and append them to ``snippets`` (kept when the loop
    is interrupted). Returns the number of intervals reported."""
    intervals = 0
    while (item := next_item()) is not None:
        began = time.perf_counter()
        score = scorer.push(features(item.snippet))
        done = time.perf_counter()
        start, end = timeline.span(item.index)
        event = {
            "event": "snippet",
            "index": item.index,
            "start_frame": item.index * timeline.stride,
            "end_frame": item.index * timeline.stride + timeline.snippet_len,
            "start": start,
            "time": end,
            "score": score,
            "wall": time.time(),  # when it was scored (Unix time), for alerting pipelines
            "latency": done - item.ready,
            "compute": done - began,
            "dropped": dropped(),
        }
        snippets.append(event)
        emit(event)
        for change in tracker.update(item.index, start, end, score):
            intervals += change["event"] == "interval_start"
            emit(change)
    return intervals


def run_rule(run_dir: Path, meta: dict[str, Any], window: int | None) -> CausalRule:
    """The causal rule of the model saved in ``run_dir``: its detector and params, and whether its
    scoring recipe (``model.json`` key ``scoring``, else run.json) cuts videos into bags."""
    recipe = meta.get("scoring") or {}
    if not recipe:
        info_path = Path(run_dir) / "run.json"
        info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
        recipe = {"score_on": info.get("score_on"), "bag_count": info.get("T")}
    return causal_rule(
        meta["detector"],
        meta.get("params"),
        recipe.get("score_on"),
        recipe.get("bag_count"),
        window,
    )


def stream_score(source: str, run: Path, options: StreamOptions, emit: Emit) -> StreamSummary:
    """Score ``source`` live with the model of ``run``; every result goes to ``emit``."""
    from wsvad.evaluate.score_video import _load_chain, setup_from_run
    from wsvad.evaluate.stream_sources import SnippetBuffer, open_source, start_reader

    setup, stem = setup_from_run(run, options.crops)
    chain = _load_chain(setup, stem, options.device)
    rule = run_rule(stem.parent, chain.meta, options.window)
    tracker = IntervalTracker(options.threshold, options.hysteresis, options.min_duration)
    opened = open_source(source, options.decoder, options.realtime, options.timeout)
    timeline = Timeline(setup.snippet_len, setup.stride, setup.fps or opened.fps)
    emit(_start_event(source, run, chain.meta, rule, opened, timeline, options))
    buffer = SnippetBuffer(options.buffer, drop=opened.live)
    stop = threading.Event()
    reader = start_reader(opened, _snippet_maker(setup, opened.fps), buffer, stop)
    scorer = CausalScorer(lambda x: chain.detect(list(x)), rule.window)
    snippets: list[dict[str, Any]] = []
    reason = "error"
    try:
        intervals = score_items(
            buffer.get,
            _features_fn(chain, options.precision or _store_precision(stem.parent)),
            scorer,
            timeline,
            tracker,
            emit,
            snippets,
            lambda: buffer.dropped,
        )
        reason = "end of stream"
    except KeyboardInterrupt:
        reason = "interrupted"
        raise
    finally:
        stop.set()
        buffer.close()  # a reader waiting for room (a file, not live) returns
        reader.join(timeout=1.0)
        for change in tracker.finish():  # an open interval ends with the stream
            emit(change)
        emit(_end_event(reason, snippets, buffer.dropped))
    return StreamSummary(reason, snippets, buffer.dropped, intervals)


def _snippet_maker(setup: Any, source_fps: float | None):
    """Frames -> ``(index, (L, C, S, S, 3))`` snippets: the run's frame rate, resize and crops
    frame by frame (no batching, which would delay a snippet), snippet windows and tail rule."""
    from wsvad.evaluate.score_video import at_run_fps
    from wsvad.extract.crops import resize_and_crop
    from wsvad.extract.snippets import SnippetStream

    def make(frames: Iterator[np.ndarray]) -> Iterator[tuple[int, np.ndarray]]:
        frames, _ = at_run_fps(frames, source_fps, setup)
        crops = (
            resize_and_crop(f[None], setup.resize, setup.crop_size, setup.crops)[0] for f in frames
        )
        return iter(SnippetStream(crops, setup.snippet_len, setup.stride, setup.tail))

    return make


def _store_precision(run_dir: Path) -> str:
    """The precision the run's store was extracted with (its ``config.precision`` attr)."""
    from wsvad.pipeline.store import FeatureStore

    store = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))["store"]
    config = FeatureStore.open(Path(store)).attrs.get("config") or {}
    return str(config.get("precision") or "fp32")


def _features_fn(chain: Any, precision: str) -> Callable[[np.ndarray], np.ndarray]:
    """``(L, C, S, S, 3)`` snippet -> ``(C, *F)`` backbone features, under autocast for bf16."""
    import contextlib

    import torch

    if precision not in ("fp32", "bf16"):
        raise WsvadError(f"precision {precision!r}: the stream runs fp32 or bf16")

    def features(snippet: np.ndarray) -> np.ndarray:
        context = (
            torch.autocast(device_type=chain.device.split(":")[0], dtype=torch.bfloat16)
            if precision == "bf16"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), context:
            return chain.features(snippet)

    return features


def _start_event(source, run, meta, rule: CausalRule, opened, timeline: Timeline, options):
    return {
        "event": "start",
        "source": str(source),
        "source_kind": opened.kind,
        "run": str(run),
        "detector": meta.get("detector"),
        "fps": timeline.fps,
        "time_unit": "s" if timeline.fps else "frames",
        "snippet_len": timeline.snippet_len,
        "stride": timeline.stride,
        "window": rule.window,
        "exact": rule.exact,
        "offline_sees": rule.offline_sees,
        "causal": rule.header(),
        "buffer": options.buffer,
        "threshold": options.threshold,
        "hysteresis": options.hysteresis,
        "min_duration": options.min_duration,
    }


def _end_event(reason: str, snippets: list[dict[str, Any]], dropped: int) -> dict[str, Any]:
    latencies = np.array([s["latency"] for s in snippets], dtype=np.float64)
    p50, p95 = (np.percentile(latencies, [50, 95]).tolist()) if len(latencies) else (None, None)
    return {
        "event": "end",
        "reason": reason,
        "snippets": len(snippets),
        "dropped": dropped,
        "latency_p50": p50,
        "latency_p95": p95,
    }


__all__ = [
    "CausalScorer",
    "IntervalTracker",
    "StreamOptions",
    "StreamSummary",
    "Timeline",
    "run_rule",
    "score_items",
    "stream_score",
]
