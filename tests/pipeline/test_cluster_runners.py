"""open_client: the inline loop, a local dask cluster, attaching to a scheduler, and the kind
registry."""

from __future__ import annotations

import time

import pytest

from wsvad.errors import WsvadError
from wsvad.pipeline.cluster import (
    ClusterConfig,
    cluster_kinds,
    open_client,
    register_cluster,
    report_progress,
)


def square(x: int) -> int:
    report_progress("test-topic", x)
    if x < 0:
        raise ValueError(f"negative input {x}")
    return x * x


def drain(runner, first: list[int]) -> dict:
    """Submit ``first``; every result of 3 submits a follow-up task (like a video split into
    pieces)."""
    handles = {runner.submit(square, x): x for x in first}
    out = {}
    for handle, result, exc in runner.results():
        x = handles.pop(handle)
        out[x] = result if exc is None else f"{type(exc).__name__}: {exc}"
        if x == 3:
            handles[runner.submit(square, 30)] = 30
    assert not handles
    return out


def test_inline_runs_in_order_and_accepts_tasks_while_iterating():
    with open_client(ClusterConfig(kind="inline")) as runner:
        assert runner.n_workers == 1
        order = []
        handles = {runner.submit(square, x): x for x in (1, 3, -2)}
        for handle, _result, _exc in runner.results():
            order.append(handles[handle])
            if handles[handle] == 3:
                handles[runner.submit(square, 30)] = 30
        assert order == [1, 3, -2, 30]
    seen = []
    with open_client(ClusterConfig(kind="inline")) as runner:
        runner.subscribe("test-topic", seen.append)
        assert drain(runner, [1, 3, -2]) == {
            1: 1,
            3: 9,
            -2: "ValueError: negative input -2",
            30: 900,
        }
    assert seen == [1, 3, -2, 30]
    report_progress("test-topic", 5)  # the runner is closed: nobody listens any more
    assert seen == [1, 3, -2, 30]


def test_local_cluster_and_attaching_to_its_scheduler():
    from distributed import LocalCluster

    seen = []
    with open_client(ClusterConfig(kind="local", workers=1, threads_per_worker=1)) as runner:
        assert runner.n_workers == 1
        runner.subscribe("test-topic", seen.append)
        assert drain(runner, [1, 3, -2]) == {
            1: 1,
            3: 9,
            -2: "ValueError: negative input -2",
            30: 900,
        }
        deadline = time.time() + 10
        while len(seen) < 4 and time.time() < deadline:  # worker events arrive asynchronously
            time.sleep(0.05)
    assert sorted(seen) == [-2, 1, 3, 30]
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with open_client(
            ClusterConfig(kind="scheduler", scheduler=cluster.scheduler_address)
        ) as runner:
            assert drain(runner, [2, 3]) == {2: 4, 3: 9, 30: 900}


def test_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="kind 'scheduler' needs an address"):
        ClusterConfig(kind="scheduler")
    with pytest.raises(
        WsvadError, match="unknown cluster kind 'moon'; known: inline, local, pbs, scheduler, slurm"
    ):
        open_client(ClusterConfig(kind="moon"))
    with pytest.raises(WsvadError, match=r"tcp://127.0.0.1:9: cannot reach the dask scheduler"):
        with open_client(
            ClusterConfig(kind="scheduler", scheduler="tcp://127.0.0.1:9", connect_timeout=1.0)
        ):
            pass


def test_register_cluster_refuses_duplicates_and_compute_threads_split_the_cores(monkeypatch):
    with pytest.raises(ValueError, match="cluster kind 'local' registered twice"):
        register_cluster("local")(lambda cfg: None)
    assert {"inline", "local", "scheduler"} <= set(cluster_kinds())
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert ClusterConfig(kind="local", workers=2).compute_threads == 4
    assert ClusterConfig(kind="inline", workers=4).compute_threads == 8
    assert ClusterConfig(workers=2, threads_per_worker=3).compute_threads == 3
