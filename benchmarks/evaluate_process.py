"""Whole-process ``wsvad evaluate`` of the UCF-Crime test protocol: start-up, reading the official
lists and the scores file, the protocol, metrics.json (``--no-report --no-plots``).

Inputs are built once: a dataset root holding only the official UCF-Crime lists and temporal
annotations (``$WSVAD_BENCHMARK_LISTS`` or the lists shipped in the package) and seeded snippet
scores for its 290 test videos (anomalous ones cover their annotated frames; the normal ones are
sized so the protocol holds ~1.1 M frames, like the real test set). ``--protocol authors`` (RTFM's
rule, frame counts T x 16) needs no store. Goal (issue #19): < 1.5 s whole process.

Run: ``python benchmarks/evaluate_process.py [--repeats 7]`` (prints each run, the median and the
import time of ``wsvad.cli``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _lists() -> Path:
    """``$WSVAD_BENCHMARK_LISTS`` if set, else the official lists shipped inside the package."""
    if os.environ.get("WSVAD_BENCHMARK_LISTS"):
        return Path(os.environ["WSVAD_BENCHMARK_LISTS"])
    from wsvad.data.packaged import lists_dir

    return lists_dir()


LISTS = _lists()
UCF_FILES = (
    "Anomaly_Train.txt",
    "Anomaly_Test.txt",
    "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
)
TOTAL_FRAMES = 1_100_000
GOAL_S = 1.5


def build_inputs(dest: Path, seed: int = 0) -> tuple[Path, Path, int]:
    """``(root, scores.npz, frames)``: a lists-only UCF root and seeded scores of its test
    videos."""
    root = dest / "root"
    root.mkdir(parents=True)
    for name in UCF_FILES:
        shutil.copy(LISTS / "ucf_crime" / name, root / name)
    intervals: dict[str, list[int]] = {}
    for line in (root / UCF_FILES[2]).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields:
            ends = [int(x) for x in fields[2:] if int(x) >= 0]
            intervals[fields[0].rsplit(".", 1)[0]] = ends
    rng = np.random.default_rng(seed)
    counts = {
        vid: (max(ends, default=0) + 15) // 16 + int(rng.integers(1, 30))
        for vid, ends in intervals.items()
    }
    normal = [vid for vid, ends in intervals.items() if max(ends, default=-1) < 0]
    spare = TOTAL_FRAMES // 16 - sum(counts.values())
    shares = rng.multinomial(max(spare, 0), [1 / len(normal)] * len(normal))
    for vid, extra in zip(normal, shares, strict=True):
        counts[vid] += int(extra)
    scores = {vid: rng.random(n).astype(np.float32) for vid, n in counts.items()}
    path = dest / "scores.npz"
    np.savez(path, **scores)
    return root, path, 16 * sum(counts.values())


def time_command(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        root, scores, frames = build_inputs(Path(tmp))
        argv = [sys.executable, "-m", "wsvad", "evaluate", "--scores", str(scores)]
        argv += ["--dataset", "ucf", "--root", str(root), "--out", str(Path(tmp) / "eval")]
        argv += ["--protocol", "authors", "--no-plots", "--no-report"]
        times = [time_command(argv, env) for _ in range(args.repeats)]
        bare = [time_command([sys.executable, "-c", "import wsvad.cli"], env) for _ in range(3)]
    median = statistics.median(times)
    print(
        f"UCF-Crime protocol (authors), 290 videos, {frames:,} frames; runs: "
        + " ".join(f"{t:.2f}" for t in times)
    )
    print(f"python -c 'import wsvad.cli': median {statistics.median(bare):.2f} s")
    verdict = "PASS" if median < GOAL_S else "FAIL"
    print(
        f"wsvad evaluate whole process: median {median:.2f} s of {args.repeats} "
        f"(goal < {GOAL_S} s) -> {verdict}  [under load if the machine is shared]"
    )


if __name__ == "__main__":
    main()
