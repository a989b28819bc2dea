"""Training speed of every registered detector on UCF-Crime-size synthetic bags, on CPU.

The bags are what the train stage holds in memory for UCF-Crime 10-crop I3D: 1,610 training videos
x 32 bags x 10 crops x 1024 (2.1 GB float32; ``--dtype float16`` halves it). Each detector runs the
real sampler + ``train_loop`` (logging and checkpointing included). Detectors that need 2-D features
([7, 1024]) get 1 crop (10 crops would be 15 GB); ``random_consecutive`` detectors draw 64-snippet
windows from 1,610 x 128-snippet sequences. Target: 1,000 ``mil`` iterations in under 60 s.

Run: ``python benchmarks/train.py [--detectors mil,rtfm] [--iterations 1000] [--threads 1]``
(add ``--precision bf16`` for mixed precision).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wsvad.detectors import build_detector, detector_class, list_detectors
from wsvad.train.config import TrainConfig, resolve
from wsvad.train.data import BagVideos, VideoInfo
from wsvad.train.loop import seed_everything, train_loop
from wsvad.train.samplers import build_sampler, sampler_needs

N_VIDEOS, N_ABNORMAL, T, CROPS, DIM = 1610, 810, 32, 10, 1024
# Issue #19 goal 3: the pre-change code's fp32 s/it per thread count, and the speed-up asked for.
# The issue's own figures (rtfm 4.1, dam 6.3, joint 5.6, sta > 48 s/it) do not reproduce: the
# pre-change code (commit 1600fc1) run by this script on this machine (quiet, 2026-12-04, steps
# after the first, mean of two runs; sta one run) is faster, so the goal is judged against these
# stricter figures. docs/performance.md has every run.
BEFORE_S_PER_IT = {
    1: {"rtfm": 2.37, "dam": 5.05, "joint": 6.24},
    2: {"rtfm": 1.35, "dam": 2.82, "joint": 3.51, "sta": 73.7},
}
GOAL_SPEEDUP = {"rtfm": 2.0, "dam": 2.0, "joint": 2.0, "sta": 3.0}


def _videos(shape: tuple[int, ...], dtype: str, seed: int) -> BagVideos:
    rng = np.random.default_rng(seed)
    array = np.empty(shape, dtype=dtype)
    for row in range(shape[0]):  # row by row: never a second full-size temporary
        array[row] = rng.standard_normal(shape[1:], dtype=np.float32)
    infos = [
        VideoInfo(
            f"v{i:04d}", "train", int(i < N_ABNORMAL), int(i < N_ABNORMAL), None, shape[1], None
        )
        for i in range(shape[0])
    ]
    return BagVideos(array, infos)


def bench(name: str, iterations: int, dtype: str, cache: dict, precision: str = "fp32") -> dict:
    cls = detector_class(name)
    cfg = resolve(
        TrainConfig(
            store=Path("unused"),
            out=Path("unused"),
            detector={"name": name},
            iterations=iterations,
            log_every=50,
            checkpoint_every=10**9,
            precision=precision,
        ),
        cls.train_defaults,
    )
    if sampler_needs(cls.sampler) == "snippets":
        key, feature_shape = ("snippets", DIM), (DIM,)
        shape = (N_VIDEOS, 128, 1, DIM)
    elif cls.feature_ndim == 2:
        key, feature_shape = ("bags2d",), (7, DIM)
        shape = (N_VIDEOS, T, 1, 7, DIM)
    else:
        key, feature_shape = ("bags",), (DIM,)
        shape = (N_VIDEOS, T, CROPS, DIM)
    if key not in cache:
        cache.clear()  # one big array at a time
        cache[key] = _videos(shape, dtype, seed=0)
    videos = cache[key]
    seed_everything(0)
    detector = build_detector(name, feature_shape, {}, n_classes=14)
    sampler = build_sampler(cls.sampler, videos, cfg.sampler, seed=0)
    ticks: list[tuple[float, float]] = []  # (wall, CPU) after every step

    def tick(step: int, total: int, logged: dict) -> None:
        ticks.append((time.perf_counter(), time.process_time()))

    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        result = train_loop(detector, sampler, cfg, Path(tmp), iterations, {}, progress=tick)
        # CPU seconds too: on a shared machine wall time mostly measures the other tenants.
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    # Steady state: the steps after the first, which also builds oneDNN's primitives and the
    # optimizer's state once per run (a paper-length run has thousands of steps).
    steady = len(ticks) - 1
    steady_s = (ticks[-1][0] - ticks[0][0]) / steady if steady else float("nan")
    steady_cpu = (ticks[-1][1] - ticks[0][1]) / steady if steady else float("nan")
    batch = (
        2 * cfg.sampler.batch_per_class
        if cls.sampler == "balanced"
        else cfg.sampler.windows_per_step
    )
    return {
        "detector": name,
        "sampler": cls.sampler,
        "F": "x".join(map(str, feature_shape)),
        "crops": shape[2],
        "batch": batch,
        "steps": result.steps,
        "seconds": seconds,
        "cpu": cpu,
        "it_s": result.steps / seconds,
        "steady_s": steady_s,
        "steady_cpu": steady_cpu,
    }


def goal_line(row: dict, threads: int) -> str | None:
    """Issue #19's goal for this detector and thread count next to the steady-state s/it."""
    before = BEFORE_S_PER_IT.get(threads, {}).get(row["detector"])
    if before is None:
        return None
    speedup, now = GOAL_SPEEDUP[row["detector"]], row["steady_s"]
    verdict = "met" if now <= before / speedup else "NOT met"
    return (
        f"         goal: <= {before / speedup:.2f} s/it ({speedup:.0f}x the pre-change code's "
        f"{before} s/it, {threads} thread(s)); now {now:.2f} s/it = {before / now:.2f}x -> "
        f"{verdict} [quiet machine only: wall time under load measures the other tenants]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--detectors",
        default=",".join(list_detectors()),
        help="comma-separated (default: all registered)",
    )
    parser.add_argument(
        "--iterations", type=int, default=1000, help="steps for mil (default: 1000)"
    )
    parser.add_argument(
        "--other-iterations",
        type=int,
        default=50,
        help="steps for the other detectors (default: 50)",
    )
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16"],
        help="bag array dtype (default: float32)",
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "bf16"],
        help="train precision (default: fp32)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache: dict = {}
    rows = []
    names = [n for n in args.detectors.split(",") if n]
    # Group by the data they need so each big array is generated once.
    names.sort(
        key=lambda n: (sampler_needs(detector_class(n).sampler), detector_class(n).feature_ndim, n)
    )
    for name in names:
        rows.append(
            bench(
                name,
                args.iterations if name == "mil" else args.other_iterations,
                args.dtype,
                cache,
                args.precision,
            )
        )
        r = rows[-1]
        print(
            f"{r['detector']:<8} {r['sampler']:<18} F={r['F']:<8} crops={r['crops']:<3} "
            f"batch={r['batch']:<4} {r['steps']:>5} it in {r['seconds']:7.2f} s = "
            f"{r['it_s']:8.1f} it/s  ({1000 / r['it_s']:7.1f} s / 1000 it, "
            f"{1000 * r['cpu'] / r['steps']:7.1f} CPU s / 1000 it); after the first step "
            f"{r['steady_s']:.2f} s/it, {r['steady_cpu']:.2f} CPU s/it",
            flush=True,
        )
        goal = goal_line(r, args.threads)
        if goal:
            print(goal, flush=True)
    mil = next((r for r in rows if r["detector"] == "mil"), None)
    if mil is not None:
        verdict = "PASS" if 1000 / mil["it_s"] < 60 else "FAIL"
        print(
            f"target: 1,000 mil iterations < 60 s ({args.precision}, {args.threads} thread(s)): "
            f"{1000 / mil['it_s']:.1f} s wall, {1000 * mil['cpu'] / mil['steps']:.1f} CPU s -> "
            f"{verdict} (wall)"
        )


if __name__ == "__main__":
    main()
