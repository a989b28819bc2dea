"""Evaluated tiny runs for the HTML report's tests (made once per session, evaluated by the CLI)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HERE = Path(__file__).resolve().parent
# The tiny store, scores and run layout of the evaluate tests, and the shared video writer.
eval_runs = _load("wsvad_tests_eval_runs", HERE / "test_eval_runs.py")
write_video = _load("wsvad_tests_conftest", HERE.parent / "conftest.py").write_video
FPS = 25.0
TINY = {vid: [s * 1e-3 for s in scores] for vid, scores in eval_runs.GOOD.items()}


def _set_root(run: Path, root: Path | None) -> None:
    """Point run.json (and each seed's) at the dataset root holding the videos."""
    for path in [run / "run.json", *run.glob("seed-*/run.json")]:
        info = json.loads(path.read_text())
        if "seeds" not in info:
            info["root"] = None if root is None else str(root)
        path.write_text(json.dumps(info))


def write_report_runs(tmp: Path) -> dict[str, Path]:
    """Store videos a, b, c (the evaluate tests' VIDEOS) with source files a.mp4, b.mp4, c.mp4 at
    25 fps, of which only data/a.mp4 exists (48 frames, 1.92 s); evaluated runs:

    * run_a: GOOD, model selection "last", root data/;
    * run_b: seeds 0 (GOOD) and 1 (PERFECT), selected on the test set, root data/;
    * run_tiny: GOOD x 1e-3, no dataset root (no video path known).
    """
    from wsvad.cli import run as cli
    from wsvad.pipeline.store import FeatureStore

    store = FeatureStore.create(
        tmp / "store",
        {
            "feature_shape": [4],
            "dtype": "float32",
            "crops": 1,
            "backbone": "test",
            "config_hash": "storehash0123456",
            "snippet_len": 16,
            "stride": 16,
        },
    )
    for vid, attrs in eval_runs.VIDEOS.items():
        facts = attrs | {"source": f"{vid}.mp4", "fps": FPS}
        store.write_video(vid, np.zeros((attrs["n_frames"] // 16, 1, 4), np.float32), facts)
    write_video(tmp / "data" / "a.mp4", n_frames=48, size=(64, 48), fps=int(FPS))
    runs = {
        "run_a": eval_runs.make_run(tmp / "run_a", tmp / "store", {0: eval_runs.GOOD}),
        "run_b": eval_runs.make_run(
            tmp / "run_b",
            tmp / "store",
            {0: eval_runs.GOOD, 1: eval_runs.PERFECT},
            selection="test-best",
        ),
        "run_tiny": eval_runs.make_run(tmp / "run_tiny", tmp / "store", {0: TINY}),
    }
    for name, run in runs.items():
        _set_root(run, None if name == "run_tiny" else tmp / "data")
        assert cli(["evaluate", "--run", str(run), "--no-plots"]) == 0
    return runs | {"data": tmp / "data", "store": tmp / "store"}


@pytest.fixture(scope="session")
def report_runs(tmp_path_factory) -> dict[str, Path]:
    return write_report_runs(tmp_path_factory.mktemp("report-runs"))
