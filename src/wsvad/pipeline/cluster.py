"""Where tasks run: ``inline`` (a plain loop in this process), ``local`` (a dask LocalCluster) or
``scheduler`` (attach to a running dask scheduler). More kinds (e.g. ``slurm``) plug in with
:func:`register_cluster`; the stages only see the small :class:`Runner` interface. A batch-cluster
kind is a context manager that starts its dask cluster from ``cfg.options`` and then
``yield from dask_runner(client)``.

No torch here; dask is imported only when a dask-backed kind is opened.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wsvad.errors import WsvadError

log = logging.getLogger(__name__)

# The kinds wsvad registers (an extension may register more with register_cluster).
ClusterKind = Literal["inline", "local", "scheduler", "slurm", "pbs"]
# Batch systems through dask-jobqueue (pipeline/jobqueue.py): workers run in batch jobs.
BatchKind = Literal["slurm", "pbs"]
BATCH_KINDS: tuple[BatchKind, ...] = get_args(BatchKind)
# Kinds whose workers run on this machine (so its devices are the workers' devices).
THIS_MACHINE_KINDS: tuple[ClusterKind, ...] = ("inline", "local")


class ClusterConfig(BaseModel):
    """How tasks are executed (the ``cluster:`` section of a stage config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # a ClusterKind, or a kind an extension registered (open_client refuses unknown kinds)
    kind: str = "local"
    workers: int = Field(1, ge=1)  # local: worker processes
    # compute threads per worker; None: cores / workers
    threads_per_worker: int | None = Field(None, ge=1)
    scheduler: str | None = None  # kind=scheduler: address such as tcp://10.0.0.5:8786
    connect_timeout: float = Field(20.0, gt=0)  # kind=scheduler: seconds to wait for the scheduler
    # local: per-worker memory limit passed to dask ("auto", "4GiB", ...)
    memory_limit: str = "auto"
    # local: one worker per GPU, worker i sees only GPU i; 0: off
    gpus_per_node: int = Field(0, ge=0)
    # local: retries of a task whose worker process died, then it fails
    allowed_failures: int = Field(2, ge=0)
    # settings of extension kinds (slurm/pbs: JobQueueConfig)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _scheduler_needs_address(self) -> ClusterConfig:
        if self.kind == "scheduler" and not self.scheduler:
            raise ValueError("kind 'scheduler' needs an address (--scheduler tcp://host:8786)")
        return self

    @property
    def compute_threads(self) -> int:
        """Threads each worker gives its model (the cores of this machine shared by the workers)."""
        if self.threads_per_worker:
            return self.threads_per_worker
        if self.kind in BATCH_KINDS:  # a batch job's cores, not the cores of the submitting machine
            from wsvad.pipeline.jobqueue import JobQueueConfig

            return int(self.options.get("cores", JobQueueConfig.model_fields["cores"].default))
        workers = 1 if self.kind == "inline" else self.gpus_per_node or self.workers
        return max(1, (os.cpu_count() or 1) // workers)


class Handle(Protocol):
    """An opaque token for a submitted task (a dask Future, or a slot of the inline queue)."""


class Runner(Protocol):
    """What a stage needs from a cluster: submit tasks and collect their results as they finish."""

    n_workers: int

    def submit(self, fn: Callable[..., Any], *args: Any) -> Handle: ...

    def subscribe(self, topic: str, callback: Callable[[Any], None]) -> None:
        """Call ``callback(value)`` for every :func:`report_progress` ``(topic, value)`` of a
        task."""
        ...

    def results(self) -> Iterator[tuple[Handle, Any, BaseException | None]]:
        """Yield ``(handle, result, None)`` or ``(handle, None, exception)`` for every task,
        including tasks submitted while iterating; ends when nothing is left."""
        ...


_KINDS: dict[str, Callable[[ClusterConfig], AbstractContextManager[Runner]]] = {}
_IN_PROCESS: dict[str, list[Callable[[Any], None]]] = {}  # topic -> callbacks of inline runners


def report_progress(topic: str, value: Any) -> None:
    """Task side: send a small progress message to the client (dropped when nobody listens).

    Inline tasks call the subscribers directly; dask tasks log a worker event, which the scheduler
    forwards to the subscribed client. Only small values (counts) should travel this way.
    """
    callbacks = _IN_PROCESS.get(topic)
    if callbacks:
        for callback in callbacks:
            callback(value)
        return
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not inside a dask worker
        return
    worker.log_event(topic, value)


def register_cluster(kind: ClusterKind | str) -> Callable:
    """Register a context manager factory ``(ClusterConfig) -> Runner`` under ``kind``."""

    def wrap(factory: Callable[[ClusterConfig], AbstractContextManager[Runner]]):
        if kind in _KINDS:
            raise ValueError(f"cluster kind {kind!r} registered twice")
        _KINDS[kind] = factory
        return factory

    return wrap


def cluster_kinds() -> list[str]:
    return sorted(_KINDS)


def open_client(cfg: ClusterConfig) -> AbstractContextManager[Runner]:
    """Open the cluster described by ``cfg``; use as ``with open_client(cfg) as runner:``."""
    if cfg.kind not in _KINDS:
        raise WsvadError(f"unknown cluster kind {cfg.kind!r}; known: {', '.join(cluster_kinds())}")
    return _KINDS[cfg.kind](cfg)


class InlineRunner:
    """Runs each task in this process, in submission order, when results are requested (tests,
    pdb)."""

    n_workers = 1

    def __init__(self) -> None:
        self._queue: deque[tuple[int, Callable[..., Any], tuple]] = deque()
        self._next = 0
        self._subscriptions: list[tuple[str, Callable[[Any], None]]] = []

    def subscribe(self, topic: str, callback: Callable[[Any], None]) -> None:
        _IN_PROCESS.setdefault(topic, []).append(callback)
        self._subscriptions.append((topic, callback))

    def close(self) -> None:
        for topic, callback in self._subscriptions:
            _IN_PROCESS[topic].remove(callback)
        self._subscriptions.clear()

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        self._next += 1
        self._queue.append((self._next, fn, args))
        return self._next

    def results(self) -> Iterator[tuple[int, Any, BaseException | None]]:
        while self._queue:
            handle, fn, args = self._queue.popleft()
            try:
                result = fn(*args)
            except Exception as exc:  # noqa: BLE001 - reported to the stage like a failed dask task
                yield handle, None, exc
            else:
                yield handle, result, None


class DaskRunner:
    """Submits tasks to a ``distributed.Client``; results arrive in completion order."""

    def __init__(self, client: Any):
        from distributed import as_completed

        self.client = client
        self.n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        self._completed = as_completed()
        self._topics: list[str] = []

    def subscribe(self, topic: str, callback: Callable[[Any], None]) -> None:
        # an event is (time, value)
        self.client.subscribe_topic(topic, lambda event: callback(event[1]))
        self._topics.append(topic)

    def close(self) -> None:
        for topic in self._topics:
            self.client.unsubscribe_topic(topic)
        self._topics.clear()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = self.client.submit(fn, *args, pure=False)
        self._completed.add(future)
        return future

    def results(self) -> Iterator[tuple[Any, Any, BaseException | None]]:
        for future in self._completed:
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a task error or a dead worker: recorded
                yield future, None, exc
            else:
                yield future, result, None
            future.release()


@register_cluster("inline")
@contextmanager
def _inline(cfg: ClusterConfig) -> Iterator[Runner]:
    runner = InlineRunner()
    try:
        yield runner
    finally:
        runner.close()


@register_cluster("local")
@contextmanager
def _local(cfg: ClusterConfig) -> Iterator[Runner]:
    import dask
    from distributed import Client, LocalCluster

    # The scheduler runs in this process and reads these when it starts. Saturation 1.0 sends a
    # worker only the task it runs: a worker that dies then counts against that task's retries
    # alone, not against innocent queued ones (dask blames every task assigned to a dead worker).
    with dask.config.set(
        {
            "distributed.scheduler.allowed-failures": cfg.allowed_failures,
            "distributed.scheduler.worker-saturation": 1.0,
            # Ctrl-C is the client's to handle: worker processes ignore it (no tracebacks)
            "distributed.worker.preload": ["wsvad.pipeline.worker_signals"],
            # A worker process killed (OOM, kill -9) is restarted by its nanny, which lives in this
            # process. SpecCluster closes a nanny whose worker is not back 15 s (the default) after
            # a death; under load, or after a second kill during the restart, it is not, and the
            # run then waits forever with no workers (found by tests/reliability/test_chaos.py).
            "distributed.deploy.lost-worker-timeout": "1000 days",
        }
    ):
        if cfg.gpus_per_node:
            with _gpu_cluster(cfg) as cluster, Client(cluster) as client:
                yield from dask_runner(client)
            return
        # one task at a time per worker process: the task's own prefetch thread overlaps decoding
        # with compute, and compute_threads cores go to the model
        with LocalCluster(
            n_workers=cfg.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            memory_limit=cfg.memory_limit,
            silence_logs=logging.ERROR,
        ) as cluster:
            with Client(cluster) as client:
                yield from dask_runner(client)


def gpu_worker_specs(gpus: int, memory_limit: str = "auto") -> dict[int, dict[str, Any]]:
    """Nanny specs of one worker per GPU; worker ``i`` sees only GPU ``i`` (so ``cuda`` is its GPU).

    The variable is set in the worker process's environment before it starts, i.e. before CUDA
    initialises, which is the only time CUDA_VISIBLE_DEVICES takes effect.
    """
    from distributed import Nanny

    return {
        i: {
            "cls": Nanny,
            "options": {
                "nthreads": 1,
                "memory_limit": memory_limit,
                "dashboard_address": None,
                "silence_logs": logging.ERROR,
                "env": {"CUDA_VISIBLE_DEVICES": str(i)},
            },
        }
        for i in range(gpus)
    }


def _gpu_cluster(cfg: ClusterConfig):
    from distributed import Scheduler, SpecCluster

    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0", "host": "127.0.0.1"}}
    return SpecCluster(
        workers=gpu_worker_specs(cfg.gpus_per_node, cfg.memory_limit),
        scheduler=scheduler,
        silence_logs=logging.ERROR,
    )


@register_cluster("scheduler")
@contextmanager
def _scheduler(cfg: ClusterConfig) -> Iterator[Runner]:
    from distributed import Client

    try:
        client = Client(cfg.scheduler, timeout=f"{cfg.connect_timeout}s")
    except (OSError, TimeoutError) as exc:
        raise WsvadError(f"{cfg.scheduler}: cannot reach the dask scheduler ({exc})") from exc
    with client:
        if not client.scheduler_info().get("workers"):
            log.warning(
                "%s: the scheduler has no workers yet; tasks wait until workers join", cfg.scheduler
            )
        yield from dask_runner(client)


def dask_runner(client: Any) -> Iterator[Runner]:
    """Yield a :class:`DaskRunner` on ``client``; extension kinds (slurm, ...) reuse this."""
    runner = DaskRunner(client)
    try:
        yield runner
    finally:
        runner.close()


# last, because jobqueue imports this module: registers the slurm and pbs kinds
from wsvad.pipeline import jobqueue as _jobqueue  # noqa: E402,F401
