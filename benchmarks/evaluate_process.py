"""Whole-process ``wsvad evaluate`` of the UCF-Crime test protocol: start-up, reading the inputs
(official lists and a scores file, or a run directory and its feature store), the protocol,
metrics.json (``--no-report --no-plots``). Goal (issue #19): < 1.5 s whole process, store reading
included.

Two measurements, inputs built once and seeded:

- **no store**: ``wsvad evaluate --scores S --dataset ucf --root R --protocol authors``: a root
  holding only the official UCF-Crime lists and temporal annotations (``$WSVAD_BENCHMARK_LISTS``
  or the lists shipped in the package) and seeded snippet scores for its 290 test videos
  (anomalous ones cover their annotated frames; the normal ones are sized so the protocol holds
  ~1.1 M frames, like the real test set). The authors' rule (frame counts T x 16) needs no store.
- **run over a store**: ``wsvad evaluate --run RUN``: the same scores as ``RUN/seed-0/scores.npz``
  of a run directory as ``wsvad train --seeds 0`` leaves it, whose ``run.json`` names a feature
  store written with ``FeatureStore`` as ``wsvad extract --dataset ucf --backbone i3d --crops 1
  --dtype float16`` writes it: all 1,900 UCF-Crime videos (1,610 train, 290 test; evaluate reads
  every video's attrs to find the test split) with extract's per-video attrs (source, n_frames,
  fps, split, label, classes, intervals). Only the features are smaller (FEATURE_DIM wide, not
  1,024): evaluate reads attrs, never features. Ground truth and frame counts come from the store
  (the wsvad protocol, true frame counts). Building the store takes ~50 s.

Run: ``python benchmarks/evaluate_process.py [--repeats 7]`` (prints each run, the medians and the
import time of ``wsvad.cli``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
FEATURE_DIM = 8  # evaluate reads the store's attrs, never its features


def build_root(dest: Path) -> Path:
    """A UCF-Crime dataset root holding only the official lists and temporal annotations."""
    root = dest / "root"
    root.mkdir(parents=True)
    for name in UCF_FILES:
        shutil.copy(LISTS / "ucf_crime" / name, root / name)
    return root


def snippet_counts(root: Path, rng: np.random.Generator) -> dict[str, int]:
    """Snippets per test video: anomalous ones cover their annotated frames, the normal ones share
    the rest of ~1.1 M frames."""
    intervals: dict[str, list[int]] = {}
    for line in (root / UCF_FILES[2]).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields:
            ends = [int(x) for x in fields[2:] if int(x) >= 0]
            intervals[fields[0].rsplit(".", 1)[0]] = ends
    counts = {
        vid: (max(ends, default=0) + 15) // 16 + int(rng.integers(1, 30))
        for vid, ends in intervals.items()
    }
    normal = [vid for vid, ends in intervals.items() if max(ends, default=-1) < 0]
    spare = TOTAL_FRAMES // 16 - sum(counts.values())
    shares = rng.multinomial(max(spare, 0), [1 / len(normal)] * len(normal))
    for vid, extra in zip(normal, shares, strict=True):
        counts[vid] += int(extra)
    return counts


def write_scores(path: Path, counts: dict[str, int], rng: np.random.Generator) -> Path:
    """Seeded float32 snippet scores, one array per video (as ``wsvad train`` saves them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{vid: rng.random(n).astype(np.float32) for vid, n in counts.items()})
    return path


def build_inputs(dest: Path, seed: int = 0) -> tuple[Path, Path, int]:
    """``(root, scores.npz, frames)``: a lists-only UCF root and seeded scores of its test
    videos."""
    root = build_root(dest)
    rng = np.random.default_rng(seed)
    counts = snippet_counts(root, rng)
    path = write_scores(dest / "scores.npz", counts, rng)
    return root, path, 16 * sum(counts.values())


def store_attrs(root: Path, out: Path) -> dict:
    """Store-level attrs as ``wsvad extract --dataset ucf --backbone i3d --crops 1 --dtype
    float16`` writes them, but a FEATURE_DIM-wide feature: evaluate reads attrs, never features."""
    from wsvad.extract.config import ExtractConfig, resolve_config
    from wsvad.extract.run import store_attrs as extract_store_attrs

    cfg = ExtractConfig(dataset="ucf", root=root, out=out, backbone="i3d", crops=1, dtype="float16")
    return extract_store_attrs(resolve_config(cfg)) | {"feature_shape": [FEATURE_DIM]}


def video_attrs(record, n_frames: int) -> dict:
    """Per-video attrs as ``wsvad extract`` writes them (extract/worker.py ``video_attrs``): the
    source's facts plus the record's label facts (split, label, classes, intervals)."""
    return {
        "source": record.rel_path,
        "source_size": 1_000 * n_frames,
        "source_mtime": 1_500_000_000.0,
        "n_frames": n_frames,
        "n_frames_sampled": n_frames,
        "fps": 30.0,
        "source_fps": 30.0,
        "decoder": "pyav",
        **record.to_attrs(),
        "suspect": None,
    }


def build_store(dest: Path, root: Path, counts: dict[str, int], rng) -> Path:
    """The feature store of every UCF-Crime video (1,610 train + 290 test, as extract writes a
    whole dataset), written with FeatureStore: test videos have ``counts`` snippets, train videos
    a seeded number; ``n_frames`` = 16 x snippets minus a seeded tail (``tail: pad``)."""
    from wsvad.data.check import load_labels_only
    from wsvad.pipeline.store import FeatureStore

    path = dest / "store"
    store = FeatureStore.create(path, store_attrs(root, path))
    for record in load_labels_only("ucf", root).records:
        n = counts.get(record.video_id) or int(rng.integers(30, 600))
        features = rng.standard_normal((n, 1, FEATURE_DIM)).astype(np.float16)
        n_frames = 16 * n - int(rng.integers(0, 16))
        store.write_video(record.video_id, features, video_attrs(record, n_frames))
    return path


def build_run(dest: Path, seed: int = 0) -> tuple[Path, int, int]:
    """``(run, videos in the store, test frames)``: a run directory as ``wsvad train --store STORE
    --seeds 0`` leaves it (``run.json`` of the seeds, ``seed-0/run.json`` naming the store and the
    labels' source, ``seed-0/scores.npz``) over a store of the whole dataset."""
    root = build_root(dest)
    rng = np.random.default_rng(seed)
    counts = snippet_counts(root, rng)
    store = build_store(dest, root, counts, rng)
    run = dest / "run"
    write_scores(run / "seed-0" / "scores.npz", counts, rng)
    member = {
        "kind": "single",
        "store": str(store),
        "dataset": "ucf",
        "root": None,
        "labels_from": "store attrs",
        "detector": "mil",
        "seed": 0,
        "feature_shape": [FEATURE_DIM],
        "snippet_len": 16,
        "stride": 16,
        "tail": "pad",
        "model_selection": "last",
        "status": "complete",
    }
    (run / "seed-0" / "run.json").write_text(json.dumps(member), encoding="utf-8")
    seeds = {"kind": "multi-seed", "seeds": [0], "model_selection": "last", "status": "complete"}
    seeds["runs"] = [{"seed": 0, "dir": "seed-0", "collapse": None}]
    (run / "run.json").write_text(json.dumps(seeds), encoding="utf-8")
    from wsvad.pipeline.store import FeatureStore

    n_videos = len(FeatureStore.open(store).video_ids())
    return run, n_videos, sum(16 * n for n in counts.values())


def time_command(argv: list[str], env: dict) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one run of ``argv``: cpu (user + system of the child) says how
    much of a wall time measured on a shared machine was waiting for a core."""
    cpu_before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return seconds, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _median_line(label: str, runs: list[tuple[float, float]]) -> str:
    median = statistics.median(wall for wall, _ in runs)
    cpu = statistics.median(cpu for _, cpu in runs)
    verdict = "PASS" if median < GOAL_S else "FAIL"
    return (
        f"{label}: median {median:.2f} s of {len(runs)} (cpu {cpu:.2f} s; goal < {GOAL_S} s) -> "
        f"{verdict}  [under load if the machine is shared]"
    )


def _runs(runs: list[tuple[float, float]]) -> str:
    return " ".join(f"{wall:.2f}" for wall, _ in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        root, scores, frames = build_inputs(Path(tmp) / "scores-only")
        argv = [sys.executable, "-m", "wsvad", "evaluate", "--scores", str(scores)]
        argv += ["--dataset", "ucf", "--root", str(root), "--out", str(Path(tmp) / "eval")]
        argv += ["--protocol", "authors", "--no-plots", "--no-report"]
        began = time.perf_counter()
        run, n_videos, run_frames = build_run(Path(tmp) / "with-store")
        built = time.perf_counter() - began
        run_argv = [sys.executable, "-m", "wsvad", "evaluate", "--run", str(run)]
        run_argv += ["--no-report", "--no-plots"]
        times, run_times = [], []
        for _ in range(args.repeats):  # interleaved: a shared machine's load falls on both alike
            times.append(time_command(argv, env))
            run_times.append(time_command(run_argv, env))
        bare = [time_command([sys.executable, "-c", "import wsvad.cli"], env) for _ in range(3)]
    print(
        f"UCF-Crime protocol (authors), 290 videos, {frames:,} frames, no store; runs: "
        + _runs(times)
    )
    print(
        f"UCF-Crime run over a store of {n_videos:,} videos (built in {built:.0f} s), 290 test "
        f"videos, {run_frames:,} frames, wsvad protocol; runs: " + _runs(run_times)
    )
    print(f"python -c 'import wsvad.cli': median {statistics.median(w for w, _ in bare):.2f} s")
    print(_median_line("wsvad evaluate --scores (no store) whole process", times))
    print(_median_line("wsvad evaluate --run (store read) whole process", run_times))


if __name__ == "__main__":
    main()
