"""Shared pieces of the fault-injection suite: tiny extraction settings, store snapshots,
subprocesses.

Helpers are fixtures because --import-mode=importlib cannot import a conftest as a module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

# random3d on 48x48 centre crops of frames scaled to a 64-pixel short side: cheap but sensitive to
# every pixel; one torch thread so that every process (pytest, CLI, dask worker) computes
# bit-identical rows
TINY = [
    "--backbone",
    "random3d",
    "--resize",
    "short64",
    "--crops",
    "1",
    "--threads-per-worker",
    "1",
    "--set",
    "crop_size=48",
    "--set",
    "backbone_options.dim=16",
]


@pytest.fixture
def tiny_args():
    """``tiny_args(root, out, *extra)`` -> argv of a small ``wsvad extract`` (without the program
    name)."""

    def build(root: Path, out: Path, *extra: str) -> list[str]:
        return [
            "extract",
            "--dataset",
            "folder",
            "--root",
            str(root),
            "--out",
            str(out),
            *TINY,
            *extra,
        ]

    return build


def _snapshot(path: Path) -> dict:
    from wsvad.pipeline.store import FeatureStore

    store = FeatureStore.open(path)
    return {vid: (store.read(vid), store.video_attrs(vid)) for vid in store.video_ids()}


@pytest.fixture
def snapshot():
    """``snapshot(store_path)`` -> {video_id: (features, attrs)} of every complete video."""
    return _snapshot


@pytest.fixture
def assert_same_store():
    """``assert_same_store(a, b)``: the same complete videos, bit-identical features and equal
    attrs."""

    def check(a: Path, b: Path) -> None:
        left, right = _snapshot(a), _snapshot(b)
        assert sorted(left) == sorted(right)
        for vid in left:
            assert left[vid][0].dtype == right[vid][0].dtype
            assert left[vid][0].tobytes() == right[vid][0].tobytes(), vid
            assert left[vid][1] == right[vid][1], vid

    return check


@pytest.fixture
def assert_complete_means_complete():
    """Every video the store lists as complete has its full shape, its attrs and readable rows."""

    def check(path: Path, expected_rows: dict[str, int]) -> list[str]:
        from wsvad.pipeline.store import FeatureStore

        store = FeatureStore.open(path)
        done = store.video_ids()
        for vid in done:
            attrs = store.video_attrs(vid)
            features = store.read(vid)
            assert attrs["status"] == "complete" and attrs["video_id"] == vid
            assert features.shape == (expected_rows[vid], 1, 16) == (attrs["n_snippets"], 1, 16), (
                vid
            )
            assert np.isfinite(features).all() and np.abs(features).sum() > 0, vid
        return done

    return check


@pytest.fixture
def spawn():
    """``spawn(args, env=None)`` -> Popen of ``python -m wsvad ARGS`` in its own process group
    (killed with its children when the test ends)."""
    procs: list[subprocess.Popen] = []

    def start(args: list[str], env: dict | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsvad", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()


@pytest.fixture
def wait_for():
    """``wait_for(predicate, timeout, what)``: poll every 20 ms; fails the test on timeout."""

    def wait(predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        pytest.fail(f"timed out after {timeout} s waiting for {what}")

    return wait
