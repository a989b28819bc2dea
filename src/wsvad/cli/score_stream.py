"""``wsvad score --stream SOURCE``: the stream's events for people (stdout) or as JSON lines
(``--jsonl``: stdout holds only JSON, messages for people go to stderr)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from wsvad.cli.app import console, err_console


def score_stream(cfg: Any, jsonl: bool) -> None:
    """Run the stream of ``cfg`` (a ScoreConfig with ``stream`` set) until it ends or Ctrl-C."""
    from wsvad.evaluate.stream import StreamOptions, stream_score

    options = StreamOptions(
        window=cfg.window,
        threshold=cfg.threshold,
        hysteresis=cfg.hysteresis,
        min_duration=cfg.min_duration,
        buffer=cfg.buffer,
        realtime=cfg.realtime,
        timeout=cfg.timeout,
        decoder=cfg.decoder,
        device=cfg.device,
        crops=cfg.crops,
        precision=cfg.precision,
    )
    events: list[dict[str, Any]] = []
    unit = ["s"]  # the start event's time unit: seconds, or frames without a frame rate

    def emit(event: dict[str, Any]) -> None:
        if event["event"] != "snippet":
            events.append(event)
        if jsonl:
            sys.stdout.write(json.dumps(event) + "\n")
            sys.stdout.flush()
        unit[0] = event.get("time_unit", unit[0])
        text = describe_event(event, unit[0])
        if text is not None and not (jsonl and event["event"] == "snippet"):
            (err_console if jsonl else console).print(text, markup=False, soft_wrap=True)

    summary = stream_score(cfg.stream, cfg.run, options, emit)
    if cfg.out is not None:
        _write_outputs(Path(cfg.out), summary.snippets, events)


def describe_event(event: dict[str, Any], time_unit: str = "s") -> str | None:
    """One line for people per event; times in ``time_unit`` (``s`` or ``frames``)."""
    kind = event["event"]
    if kind == "start":
        rate = f"{event['fps']:g} fps" if event["fps"] else "unknown frame rate"
        return (
            f"stream {event['source']} ({event['source_kind']}, {rate}), detector "
            f"{event['detector']} of {event['run']}; {event['causal']}"
        )
    unit = " s" if time_unit == "s" else ""
    if kind == "snippet":
        dropped = f"  dropped {event['dropped']}" if event["dropped"] else ""
        return (
            f"snippet {event['index']:5d}  frames [{event['start_frame']}, {event['end_frame']})"
            f"  score {event['score']:.3f}  latency {1000 * event['latency']:.0f} ms{dropped}"
        )
    if kind == "interval_start":
        return (
            f"anomaly from {event['time']:.2f}{unit} (score {event['score']:.3f} >= "
            f"{event['threshold']:g})"
        )
    if kind == "interval_end":
        return (
            f"anomaly {event['start']:.2f}-{event['time']:.2f}{unit} ended "
            f"({event['duration']:.2f}{unit}, peak {event['peak']:.3f})"
        )
    if kind == "end" and event["reason"] == "interrupted":
        return None  # Ctrl-C: the command line prints its one "interrupted" line (exit 130)
    if kind == "end":
        latency = (
            f", latency p50 {1000 * event['latency_p50']:.0f} ms p95 "
            f"{1000 * event['latency_p95']:.0f} ms"
            if event["snippets"]
            else ""
        )
        counts = f"{event['snippets']} snippets scored, {event['dropped']} dropped"
        return f"{event['reason']}: {counts}{latency}"
    return None


def _write_outputs(out: Path, snippets: list[dict[str, Any]], events: list[dict[str, Any]]):
    """``snippet_scores.csv`` and ``score.json`` (the start, interval and end events)."""
    from wsvad.atomic import write_text_atomic
    from wsvad.evaluate.report import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    lines = ["snippet,start_frame,end_frame,score,latency_ms"] + [
        f"{s['index']},{s['start_frame']},{s['end_frame']},{s['score']:.6f},"
        f"{1000 * s['latency']:.1f}"
        for s in snippets
    ]
    write_text_atomic(out / "snippet_scores.csv", "\n".join(lines) + "\n")
    write_json_atomic(out / "score.json", {"mode": "stream", "events": events})
    for name in ("snippet_scores.csv", "score.json"):
        err_console.print(f"wrote {out / name}", markup=False, soft_wrap=True)
