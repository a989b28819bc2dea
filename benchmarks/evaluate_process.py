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
import json
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
    n_videos = len(list((store / "videos").iterdir()))
    return run, n_videos, sum(16 * n for n in counts.values())


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
