"""Extraction on a real single-node SLURM: dask-jobqueue workers, the sbatch job array, a killed
job.

Every store made on SLURM must be complete and bit-identical to an inline run (one torch thread
everywhere, so the reductions run in the same order).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_OK
from wsvad.extract.config import ExtractConfig
from wsvad.extract.run import run_extract
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

# dask_jobqueue installs a SIGINT handler when imported, which only the main thread may do; the
# killed-worker test starts the cluster from a thread.
pytest.importorskip("dask_jobqueue")

pytestmark = pytest.mark.slurm

FEATURES = {
    "backbone": "random3d",
    "resize": "short64",
    "crop_size": 48,
    "crops": 10,
    "piece_snippets": 0,
}


def slurm_options(tmp_path: Path, jobs: int) -> dict:
    return {
        "jobs": jobs,
        "cores": 1,
        "memory": "2GB",
        "queue": "debug",
        "walltime": "00:10:00",
        "scheduler_host": "127.0.0.1",
        "local_directory": str(tmp_path / "scratch"),
        "log_directory": str(tmp_path / "joblogs"),
        "wait_timeout": 90,
    }


def cfg_for(root: Path, out: Path, cluster: dict) -> ExtractConfig:
    return ExtractConfig.model_validate(
        {
            "dataset": "folder",
            "root": root,
            "out": out,
            **FEATURES,
            "cluster": {"threads_per_worker": 1, **cluster},
        }
    )


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "wsvad_tests_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    root = tmp_path_factory.mktemp("slurm-videos")
    for i, n in enumerate([300, 260, 330, 280]):
        conftest.write_video(root / f"clip{i}.mp4", n_frames=n, size=(64, 48), seed=i)
    return root


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "store"
    summary = run_extract(cfg_for(videos, out, {"kind": "inline"}))
    assert summary.extracted == 4 and not summary.failures
    return FeatureStore.open(out)


def assert_identical(store_path: Path, reference: FeatureStore) -> None:
    store = FeatureStore.open(store_path)
    assert store.video_ids() == reference.video_ids() == ["clip0", "clip1", "clip2", "clip3"]
    assert store.failures() == {}
    for vid in reference.video_ids():
        np.testing.assert_array_equal(store.read(vid), reference.read(vid))
        assert store.video_attrs(vid)["n_snippets"] == reference.video_attrs(vid)["n_snippets"]


def test_slurmcluster_extraction_matches_inline(slurm_cluster, videos, reference, tmp_path):
    out = tmp_path / "store"
    summary = run_extract(
        cfg_for(videos, out, {"kind": "slurm", "options": slurm_options(tmp_path, 2)})
    )
    assert (summary.extracted, summary.failures) == (4, {})
    assert_identical(out, reference)
    assert list((tmp_path / "joblogs").glob("*.err")), (
        "the workers ran as SLURM jobs and logged there"
    )


def test_job_array_script_runs_under_sbatch(slurm_cluster, videos, reference, tmp_path, capsys):
    out, script = tmp_path / "store", tmp_path / "array.sh"
    code = run(
        [
            "slurm-script",
            "--dataset",
            "folder",
            "--root",
            str(videos),
            "--out",
            str(out),
            "--backbone",
            "random3d",
            "--crops",
            "10",
            "--set",
            "resize=short64",
            "--set",
            "crop_size=48",
            "--shards",
            "2",
            "--cores",
            "1",
            "--memory",
            "2GB",
            "--queue",
            "debug",
            "--walltime",
            "00:10:00",
            "--script",
            str(script),
        ]
    )
    assert code == EXIT_OK
    submitted = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert submitted.returncode == 0, submitted.stderr
    ids = re.search(
        r"setup (\d+), extraction array (\d+) \(2 tasks\), check (\d+)", submitted.stdout
    )
    assert ids, submitted.stdout
    check_state, exit_code = wait_for_job(ids.group(3), timeout=120)
    logs = "\n".join(p.read_text() for p in sorted(Path(f"{out}.logs").glob("*.out")))
    assert (check_state, exit_code) == ("COMPLETED", "0:0"), logs
    assert "4 of 4 complete, 0 failed, 0 missing" in logs
    assert sorted(p.name for p in (out / "failures").iterdir() if p.is_dir()) == [
        "shard-0-of-2",
        "shard-1-of-2",
    ]
    assert_identical(out, reference)


def test_a_killed_worker_job_loses_nothing(slurm_cluster, videos, reference, tmp_path):
    out = tmp_path / "store"
    cfg = cfg_for(videos, out, {"kind": "slurm", "options": slurm_options(tmp_path, 2)})
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=run_extract(cfg)), daemon=True)
    thread.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        for partial in tmp_entries(out):
            pid = int(partial.name.split(".")[-2])  # <node>.<host>.<pid>.<uuid>
            job = slurm_job_of(pid)
            if job and _frozen_mid_video(pid, partial):
                victim = (partial, job)
                subprocess.run(["scancel", "--signal=KILL", job], check=True)
                break
        time.sleep(0.02)
    assert victim, "no worker was caught mid-video"
    thread.join(timeout=180)
    summary = result["summary"]
    assert (summary.extracted, summary.failures) == (4, {})
    assert victim[0].exists(), "the killed job's half-written array stays in .tmp, never in videos/"
    assert_identical(out, reference)
    again = run_extract(
        cfg_for(videos, out, {"kind": "inline"})
    )  # resume: nothing redone, debris removed
    assert (again.skipped, again.extracted) == (4, 0) and not victim[0].exists()


def _frozen_mid_video(pid: int, partial: Path) -> bool:
    """Stop the worker, then check that its array is still being written: on a loaded machine the
    worker may publish it between our listing and the kill, and a kill after publishing loses
    nothing to test. A worker that already published is let go on."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return False
    if partial.exists():
        return True
    os.kill(pid, signal.SIGCONT)
    return False


def slurm_job_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"SLURM_JOB_ID="):
            return item.split(b"=", 1)[1].decode()
    return None


def wait_for_job(job_id: str, timeout: float) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    state = exit_code = ""
    while time.monotonic() < deadline:
        text = subprocess.run(
            ["scontrol", "show", "job", job_id], capture_output=True, text=True
        ).stdout
        state = re.search(r"JobState=(\S+)", text).group(1) if "JobState=" in text else ""
        exit_code = re.search(r" ExitCode=(\S+)", text).group(1) if " ExitCode=" in text else ""
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY"):
            return state, exit_code
        time.sleep(0.5)
    return state, exit_code
