"""Live scoring speed: ``wsvad score --stream`` on a 320x240, 25 fps source played in real time.

A generated video is played at its own frame rate (``--realtime``: frame k is released at k / 25 s,
as a camera would deliver it) through the stream scorer with 1-crop I3D on ``--threads`` CPU
threads, fp32 and bf16, and a MIL detector (its cost is negligible next to I3D). Printed per
precision:

* real-time factor (RTF): seconds of video per second of scoring work (backbone + detector), i.e.
  how many such streams one scorer could keep up with; below 1 the scorer falls behind and drops;
* snippets scored / dropped (the buffer holds ``--buffer`` snippets; a live source drops beyond);
* latency from a snippet's last frame (its scheduled release) to its score: p50 / p95.

Goal (issue #16): RTF >= 1.5, no drops, p95 latency < 1.0 s. On a loaded machine the figures are
lower than on a quiet one; the script says which when ``--label`` is given.

Run: ``python benchmarks/stream.py [--seconds 20] [--threads 2] [--precision fp32,bf16]
[--buffer 2] [--label "under load"]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_video  # noqa: E402  (the same PyAV writer the tests use)

from wsvad.cli import run as cli  # noqa: E402
from wsvad.evaluate.stream import StreamOptions, stream_score  # noqa: E402

GOAL = "goal: RTF >= 1.5, 0 dropped, p95 < 1.0 s"
FPS, SIZE = 25, (320, 240)


def make_run(tmp: Path) -> Path:
    """An I3D (1 crop) store extracted from a 16-frame clip, and a seeded MIL detector on it."""
    from wsvad.detectors import build_detector
    from wsvad.detectors.checkpoint import save_detector
    from wsvad.scoring.recipe import ScoringRecipe

    clip = write_video(tmp / "clip" / "clip.mp4", n_frames=16, size=SIZE, fps=FPS)
    args = ["extract", "--dataset", "folder", "--root", str(clip.parent), "--out"]
    code = cli([*args, str(tmp / "store"), "--backbone", "i3d", "--crops", "1", "--workers", "0"])
    if code != 0:
        raise SystemExit(f"extraction of the I3D store failed (exit {code})")
    torch.manual_seed(0)
    detector = build_detector("mil", (1024,), {}).eval()
    run = tmp / "run"
    recipe = ScoringRecipe(
        crop_mode="separate", score_on="snippets", bag_rule="rtfm", bag_pool="mean", bag_count=32
    )
    meta = {"class_names": ["Normal", "Anomaly"], "scoring": recipe.to_json()}
    save_detector(run / "model", detector, meta)
    info = {"kind": "single", "store": str(tmp / "store"), "detector": "mil", "seed": 0}
    (run / "run.json").write_text(json.dumps(info))
    return run


def measure(video: Path, run: Path, precision: str, buffer: int) -> dict:
    options = StreamOptions(realtime=True, buffer=buffer, threshold=1.0, precision=precision)
    summary = stream_score(str(video), run, options, lambda event: None)
    snippets = summary.snippets
    latency = np.array([s["latency"] for s in snippets])
    compute = sum(s["compute"] for s in snippets)
    media = sum(s["time"] - s["start"] for s in snippets)  # seconds of video scored
    return {
        "precision": precision,
        "rtf": media / compute,
        "scored": len(snippets),
        "dropped": summary.dropped,
        "p50": float(np.percentile(latency, 50)),
        "p95": float(np.percentile(latency, 95)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the source")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32,bf16")
    parser.add_argument("--buffer", type=int, default=2)
    parser.add_argument("--label", default="", help='e.g. "under load": printed with the figures')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp))
        n_frames = int(args.seconds * FPS)
        video = write_video(Path(tmp) / "live" / "live.mp4", n_frames=n_frames, size=SIZE, fps=FPS)
        # warm-up: the first I3D calls allocate; not part of a live camera's steady state
        measure(write_video(Path(tmp) / "w" / "w.mp4", 48, SIZE, FPS), run, "fp32", args.buffer)
        rows = []
        for precision in args.precision.split(","):
            started = time.perf_counter()
            rows.append(measure(video, run, precision, args.buffer))
            rows[-1]["wall"] = time.perf_counter() - started
    label = f", {args.label}" if args.label else ""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"stream, 320x240 {FPS} fps source played in real time ({args.seconds:g} s), 1-crop I3D, "
        f"{args.threads} CPU threads (load average {load}{label}); {GOAL}"
    )
    print(
        f"{'precision':9s} {'RTF':>6s} {'scored':>6s} {'dropped':>7s} {'p50 s':>6s} {'p95 s':>6s}"
    )
    for r in rows:
        print(
            f"{r['precision']:9s} {r['rtf']:6.2f} {r['scored']:6d} {r['dropped']:7d} "
            f"{r['p50']:6.2f} {r['p95']:6.2f}"
        )


if __name__ == "__main__":
    main()
