"""Time the full UCF-Crime test protocol (290 videos, ~1.1 M frames) on synthetic scores.

Target: < 2 s given the scores (alignment, pooled AUC, both APs, FAR, abnormal-only AUC and the
13 per-class AUCs). Run: ``python benchmarks/evaluate.py [--alignment rtfm] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from wsvad.evaluate.protocol import Protocol, VideoTruth
from wsvad.evaluate.run import evaluate_scores
from wsvad.evaluate.sources import load_scores

CLASSES = [
    "Abuse",
    "Arrest",
    "Arson",
    "Assault",
    "Burglary",
    "Explosion",
    "Fighting",
    "RoadAccidents",
    "Robbery",
    "Shooting",
    "Shoplifting",
    "Stealing",
    "Vandalism",
]
# Test videos per class in the official UCF-Crime test list (140 in all), plus 150 normal videos.
PER_CLASS = [2, 5, 9, 3, 13, 21, 5, 23, 5, 23, 21, 5, 5]


def synthetic_ucf(
    seed: int = 0, total_frames: int = 1_100_000
) -> tuple[dict[str, VideoTruth], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    kinds = [(c, i) for c, n in zip(CLASSES, PER_CLASS, strict=True) for i in range(n)] + [
        ("Normal", i) for i in range(150)
    ]
    lengths = rng.lognormal(mean=0.0, sigma=0.8, size=len(kinds))
    lengths = np.maximum(64, (lengths / lengths.sum() * total_frames).astype(int))
    truths, scores = {}, {}
    for (cls, i), n_frames in zip(kinds, lengths, strict=True):
        vid = f"{cls}{i:03d}_x264"
        n_snippets = n_frames // 16
        s = rng.beta(2, 5, n_snippets).astype(np.float32)
        intervals: tuple[tuple[int, int], ...] = ()
        if cls != "Normal":
            start = int(rng.integers(0, n_frames // 2))
            end = int(min(n_frames, start + rng.integers(n_frames // 10, n_frames // 2)))
            intervals = ((start, end),)
            s[start // 16 : end // 16] += rng.random() * 0.5
        truths[vid] = VideoTruth(
            vid, int(n_frames), int(cls != "Normal"), () if cls == "Normal" else (cls,), intervals
        )
        scores[vid] = np.clip(s, 0, 1)
    return truths, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alignment", default="true-frames", choices=["true-frames", "rtfm"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    truths, scores = synthetic_ucf()
    protocol = Protocol(alignment=args.alignment)
    names = ["Normal", *CLASSES]
    n_frames = sum(t.n_frames for t in truths.values())
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        _, figures = evaluate_scores(scores, truths, protocol, names)
        times.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scores.npz"
        np.savez(path, **scores)
        start = time.perf_counter()
        evaluate_scores(load_scores(path), truths, protocol, names)
        with_load = time.perf_counter() - start
    print(
        f"UCF-size protocol: {len(truths)} videos, {n_frames:,} frames, {len(names) - 1} classes, "
        f"alignment {args.alignment}"
    )
    print(
        f"evaluate (given scores): best {min(times):.3f} s, median {np.median(times):.3f} s of "
        f"{args.repeats}  (target < 2 s)"
    )
    print(f"evaluate including reading scores.npz: {with_load:.3f} s")
    print(
        f"AUC {100 * figures['auc']:.2f}  AP {100 * figures['ap_sklearn']:.2f}  PR-AUC(trapz) "
        f"{100 * figures['pr_auc_trapezoid']:.2f}  FAR {100 * figures['far']:.2f}  per-class AUCs "
        f"{len(figures['per_class_auc'])}"
    )


if __name__ == "__main__":
    main()
