"""Every detector end to end on real video: the synthetic dataset of `wsvad synth` (demo preset),
I3D features (1 crop), `wsvad train` with ``configs/train/synthetic_<detector>.yaml``, then
`wsvad evaluate`. Prints frame AUC, AP and wall time per detector.

Two stores are extracted (each step resumes, so a second run only trains and evaluates):
``features`` (16-frame snippets, 1024-d) for mil, salient, rtfm, claws and sta, and
``features_time`` (64-frame snippets, the I3D temporal axis kept, [7, 1024]) for dam and joint. On 2
CPU cores the extraction takes ~5 min, the trainings ~10 min in all.

Run:
``python benchmarks/synthetic_detectors.py [--work demo_out] [--detectors dam,claws] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from wsvad.cli import run

REPO = Path(__file__).resolve().parents[1]
DETECTORS = ["mil", "salient", "rtfm", "claws", "sta", "joint", "dam"]
TIME_KEEPING = {"dam", "joint"}  # detectors that need [7, 1024] per 64-frame snippet


def _check(code: int, what: str) -> None:
    if code != 0:
        raise SystemExit(f"{what} failed with exit code {code}")


def prepare(work: Path) -> dict[str, Path]:
    """Synthesise the dataset and extract both stores (resuming whatever is already done)."""
    data = work / "data"
    _check(
        run(
            ["synth", "--config", str(REPO / "configs" / "synth" / "demo.yaml"), "--out", str(data)]
        ),
        "synth",
    )
    stores = {"plain": work / "features", "time": work / "features_time"}
    common = ["extract", "--dataset", "ucf", "--root", str(data), "--crops", "1"]
    _check(run([*common, "--out", str(stores["plain"])]), "extract (16-frame snippets)")
    _check(
        run(
            [
                *common,
                "--out",
                str(stores["time"]),
                "--snippet-len",
                "64",
                "--set",
                "backbone_options.keep_time=true",
            ]
        ),
        "extract (64-frame snippets, temporal axis kept)",
    )
    return {"data": data, **stores}


def train_and_evaluate(name: str, paths: dict[str, Path], work: Path, seed: int) -> dict:
    store = paths["time"] if name in TIME_KEEPING else paths["plain"]
    out = work / "runs" / f"{name}-seed{seed}"
    start = time.perf_counter()
    _check(
        run(
            [
                "train",
                "--config",
                str(REPO / "configs" / "train" / f"synthetic_{name}.yaml"),
                "--store",
                str(store),
                "--dataset",
                "ucf",
                "--root",
                str(paths["data"]),
                "--out",
                str(out),
                "--seed",
                str(seed),
                "--overwrite",
            ]
        ),
        f"train {name}",
    )
    train_s = time.perf_counter() - start
    _check(run(["evaluate", "--run", str(out), "--no-plots"]), f"evaluate {name}")
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    steps = json.loads((out / "run.json").read_text())["steps"]
    return {"detector": name, "steps": steps, "train_s": train_s, "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work", type=Path, default=REPO / "demo_out", help="folder for data, stores and runs"
    )
    parser.add_argument(
        "--detectors", default=",".join(DETECTORS), help="comma-separated detector names"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    names = [n.strip() for n in args.detectors.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DETECTORS))
    if unknown:
        raise SystemExit(f"no synthetic config for {unknown}; known: {DETECTORS}")
    paths = prepare(args.work)
    rows = [train_and_evaluate(name, paths, args.work, args.seed) for name in names]
    print(f"\n{'detector':<10}{'steps':>7}{'train s':>9}{'frame AUC':>11}{'AP':>8}")
    for row in rows:
        overall = row["metrics"]["metrics"]
        print(
            f"{row['detector']:<10}{row['steps']:>7}{row['train_s']:>9.1f}"
            f"{overall['auc']:>11.3f}{overall['ap_sklearn']:>8.3f}"
        )


if __name__ == "__main__":
    main()
