"""kill -9 of a running extraction (the CLI process with its local dask cluster, or one dask
worker), a worker that dies on one video every time, and a second extraction on the same store.

Each test injects the fault for real (SIGKILL, os._exit in the worker) and checks the exact outcome:
between kill and resume nothing listed complete is half-written, and the resumed store is
bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import psutil
import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_ERROR, EXIT_PARTIAL
from wsvad.locks import command_text
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

FRAMES = {"v0": 40, "v1": 72, "v2": 100, "v3": 56, "v4": 130, "v5": 90}
ROWS = {vid: -(-n // 16) for vid, n in FRAMES.items()}  # tail=pad: ceil(frames / 16) snippets
SLOW_WRITES = [
    "--set",
    "chunk_t=2",
    "--set",
    "batch_clips=1",
]  # many forward passes and chunk writes to hit


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("tests_conftest", Path(__file__).parents[1] / "conftest.py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    root = tmp_path_factory.mktemp("kill") / "videos"
    for i, (vid, n) in enumerate(FRAMES.items()):
        module.write_video(root / f"{vid}.mp4", n_frames=n, seed=i)
    return root


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:
    """An uninterrupted inline run of the same settings."""
    from wsvad.extract.config import ExtractConfig
    from wsvad.extract.run import run_extract

    out = tmp_path_factory.mktemp("ref") / "store"
    cfg = ExtractConfig.model_validate(
        {
            "dataset": "folder",
            "root": dataset,
            "out": out,
            "backbone": "random3d",
            "resize": "short64",
            "crops": 1,
            "crop_size": 48,
            "backbone_options": {"dim": 16},
            "chunk_t": 2,
            "batch_clips": 1,
            "cluster": {"kind": "inline", "threads_per_worker": 1},
        }
    )
    assert run_extract(cfg).failures == {}
    return out


def _store_ready(out: Path) -> bool:
    return (out / ".lock").exists() and FeatureStore.is_store(out)


def _n_done(out: Path) -> int:
    return len(FeatureStore.open(out).video_ids()) if FeatureStore.is_store(out) else 0


def _busy(out: Path) -> bool:
    return (out / ".tmp").is_dir() and tmp_entries(out)


def _is_dask_worker(cmdline: list[str]) -> bool:
    """A worker process: spawned by multiprocessing, renamed "dask worker [...]" by distributed
    once it runs (when setproctitle is installed)."""
    text = " ".join(cmdline)
    return "multiprocessing.spawn" in text or text.startswith("dask worker")


def _worker_pids(pid: int) -> list[int]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    pids = []
    for child in children:
        try:  # a child may exit (or be a zombie) between the listing and this read
            if _is_dask_worker(child.cmdline()):
                pids.append(child.pid)
        except psutil.NoSuchProcess:  # ZombieProcess included
            continue
    return pids


def _kill_extract_then_resume(
    seed,
    dataset,
    reference,
    tmp_path,
    tiny_args,
    spawn,
    wait_for,
    assert_complete_means_complete,
    assert_same_store,
):
    rng = random.Random(seed)
    out = tmp_path / f"store-{seed}"
    args = tiny_args(dataset, out, "--workers", "1", *SLOW_WRITES)
    proc = spawn(args)
    wait_for(
        lambda: _store_ready(out) or proc.poll() is not None, 120, "the extraction to take its lock"
    )
    target = rng.randrange(len(FRAMES) - 1)  # complete videos before the kill
    wait_for(
        lambda: _n_done(out) >= target or proc.poll() is not None, 120, f"{target} complete videos"
    )
    time.sleep(rng.uniform(0.0, 0.3))
    assert proc.poll() is None, "the run ended before the kill: make the videos longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = assert_complete_means_complete(out, ROWS)
    time.sleep(0.5)  # an orphaned dask worker may still publish the video it was on: still complete
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the orphaned worker noticed and exited by itself
        pass
    done_after = assert_complete_means_complete(out, ROWS)
    assert set(done) <= set(done_after)
    assert (out / ".lock").exists()  # the dead process's lock is left behind ...
    assert run(args) == 0  # ... and taken over by the same command, which resumes
    assert not tmp_entries(out) if (out / ".tmp").exists() else True
    assert_same_store(out, reference)
    assert FeatureStore.open(out).failures() == {} and not (out / ".lock").exists()
    return len(done)


def test_kill_9_of_extract_then_resume_equals_an_uninterrupted_run(
    dataset,
    reference,
    tmp_path,
    tiny_args,
    spawn,
    wait_for,
    assert_complete_means_complete,
    assert_same_store,
):
    _kill_extract_then_resume(
        0,
        dataset,
        reference,
        tmp_path,
        tiny_args,
        spawn,
        wait_for,
        assert_complete_means_complete,
        assert_same_store,
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_9_of_extract_at_random_points(
    seed,
    dataset,
    reference,
    tmp_path,
    tiny_args,
    spawn,
    wait_for,
    assert_complete_means_complete,
    assert_same_store,
):
    _kill_extract_then_resume(
        seed,
        dataset,
        reference,
        tmp_path,
        tiny_args,
        spawn,
        wait_for,
        assert_complete_means_complete,
        assert_same_store,
    )


def _kill_worker_mid_run(
    seed,
    dataset,
    reference,
    tmp_path,
    tiny_args,
    spawn,
    wait_for,
    assert_complete_means_complete,
    assert_same_store,
):
    rng = random.Random(seed)
    out = tmp_path / f"store-w{seed}"
    proc = spawn(tiny_args(dataset, out, "--workers", "1", *SLOW_WRITES))
    target = rng.randrange(len(FRAMES) - 1)
    wait_for(
        lambda: _store_ready(out) and _n_done(out) >= target or proc.poll() is not None,
        120,
        "progress",
    )
    workers = wait_for(
        lambda: _worker_pids(proc.pid) or proc.poll() is not None, 60, "the dask worker"
    )
    # mid-video: the worker has a half-written array (a worker dying while the cluster starts up
    # fails the start-up instead, see docs/guarantees.md)
    wait_for(lambda: _busy(out) or proc.poll() is not None, 60, "a video in progress")
    time.sleep(rng.uniform(0.0, 0.3))
    assert proc.poll() is None, "the run ended before the kill"
    os.kill(workers[0], signal.SIGKILL)
    assert_complete_means_complete(out, ROWS)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr[-2000:]  # dask restarted the worker and retried its video
    assert f"{len(FRAMES)} selected" in stdout
    assert_same_store(out, reference)
    assert FeatureStore.open(out).failures() == {}


def test_kill_9_of_a_dask_worker_is_retried_and_the_run_completes(
    dataset,
    reference,
    tmp_path,
    tiny_args,
    spawn,
    wait_for,
    assert_complete_means_complete,
    assert_same_store,
):
    _kill_worker_mid_run(
        0,
        dataset,
        reference,
        tmp_path,
        tiny_args,
        spawn,
        wait_for,
        assert_complete_means_complete,
        assert_same_store,
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_of_a_dask_worker_at_random_points(
    seed,
    dataset,
    reference,
    tmp_path,
    tiny_args,
    spawn,
    wait_for,
    assert_complete_means_complete,
    assert_same_store,
):
    _kill_worker_mid_run(
        seed,
        dataset,
        reference,
        tmp_path,
        tiny_args,
        spawn,
        wait_for,
        assert_complete_means_complete,
        assert_same_store,
    )


def test_a_video_that_kills_its_worker_is_retried_then_failed(
    dataset, reference, tmp_path, tiny_args, monkeypatch, capsys, snapshot
):
    root = tmp_path / "videos"
    root.mkdir()
    for vid in ("v0", "v2", "v3"):
        (root / f"{vid}.mp4").write_bytes((dataset / f"{vid}.mp4").read_bytes())
    out = tmp_path / "store"
    args = tiny_args(
        root, out, "--workers", "1", *SLOW_WRITES, "--set", "cluster.allowed_failures=1"
    )
    monkeypatch.setenv(
        "WSVAD_FAULT_EXIT_ON", "v2"
    )  # the worker extracting v2 dies after a forward pass
    assert run(args) == EXIT_PARTIAL
    err = capsys.readouterr().err
    reason = (
        "the worker process died while extracting this video (2 attempts; segfault, out of "
        "memory or killed)"
    )
    assert f"  v2: KilledWorker: {reason}" in err
    store = FeatureStore.open(out)
    assert store.video_ids() == ["v0", "v3"]
    assert store.failures()["v2"] == {
        "video_id": "v2",
        "source": "v2.mp4",
        "exception": "KilledWorker",
        "reason": reason,
        "decoder": None,
    }
    # one half-written array per attempt: the first death was retried once (allowed_failures=1), not
    # more
    assert sorted(p.name.split(".")[0] for p in tmp_entries(out)) == ["v2", "v2"]
    monkeypatch.delenv("WSVAD_FAULT_EXIT_ON")
    assert run(args) == 0  # the same command redoes only v2 and clears its failure
    expected, got = snapshot(reference), snapshot(out)
    assert sorted(got) == ["v0", "v2", "v3"]
    for vid in got:
        assert (
            got[vid][0].tobytes() == expected[vid][0].tobytes()
            and got[vid][1]["n_snippets"] == ROWS[vid]
        )
    assert store.failures() == {} and not tmp_entries(out)


def test_default_retries_of_a_dead_worker():
    from wsvad.extract.config import ExtractConfig

    assert ExtractConfig().cluster.allowed_failures == 2


def test_a_second_extract_on_the_same_store_is_refused(
    dataset, tmp_path, tiny_args, spawn, wait_for, snapshot, reference, assert_same_store
):
    out = tmp_path / "store"
    first_args = tiny_args(dataset, out, "--workers", "0", *SLOW_WRITES)
    first = spawn(first_args)
    wait_for(
        lambda: _store_ready(out) or first.poll() is not None, 60, "the first extraction's lock"
    )
    os.kill(first.pid, signal.SIGSTOP)  # hold it inside its run, whatever the machine's speed
    try:
        before = snapshot(out)
        for extra in ([], ["--overwrite"]):
            second = spawn(tiny_args(dataset, out, "--workers", "0", *SLOW_WRITES, *extra))
            _, stderr = second.communicate(timeout=60)
            assert second.returncode == EXIT_ERROR
            lines = [line for line in stderr.splitlines() if line.startswith("error:")]
            assert lines == [
                f"error: {out}: another wsvad process (pid {first.pid} on {os.uname().nodename}: "
                f"{command_text(['wsvad', *first_args])}) is writing this store; wait for it to "
                f"finish, or delete {out / '.lock'} if that process is gone"
            ]
        assert (
            snapshot(out).keys() == before.keys()
        )  # the refused runs neither wrote nor deleted anything
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr[-2000:]
    assert_same_store(out, reference)
