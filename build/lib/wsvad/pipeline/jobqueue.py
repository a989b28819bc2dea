"""Batch-cluster workers through dask-jobqueue (SLURM, PBS): the same extraction, on many nodes.

Workers that die or reach their walltime lose nothing: tasks are per video, results are written by
the worker straight into the store with an atomic rename, and the scheduler reschedules whatever a
lost worker had not finished. ``adapt(minimum_jobs=jobs, maximum_jobs=jobs)`` replaces dead jobs,
and workers retire themselves shortly before the walltime (``--lifetime``) so no video is cut
mid-write.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wsvad.errors import WsvadError
from wsvad.pipeline.cluster import BatchKind, ClusterConfig, DaskRunner, Runner, register_cluster

log = logging.getLogger(__name__)

_WALLTIME_HELP = "HH:MM:SS"


class JobQueueConfig(BaseModel):
    """Where and how batch jobs run (``--cluster slurm|pbs`` and the options that follow it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BatchKind = "slurm"
    jobs: int = Field(1, ge=1, description="batch jobs to keep running (one dask worker each)")
    cores: int = Field(4, ge=1, description="CPU cores per job")
    memory: str = Field("16GB", description="memory per job, e.g. 16GB")
    gpus: int = Field(0, ge=0, description="GPUs per job (adds --gres=gpu:N on SLURM)")
    queue: str | None = Field(None, description="partition (SLURM) or queue (PBS)")
    account: str | None = None
    walltime: str = Field("04:00:00", description=_WALLTIME_HELP)
    job_extra: list[str] = Field(default_factory=list, description="extra #SBATCH/#PBS directives")
    interface: str | None = Field(
        None, description="network interface workers use to reach the scheduler (e.g. ib0)"
    )
    scheduler_host: str | None = Field(
        None, description="address the scheduler listens on (default: dask's choice)"
    )
    local_directory: str | None = Field(None, description="worker scratch directory on the node")
    log_directory: str | None = Field(
        None, description="where batch jobs write their stdout/stderr"
    )
    python: str | None = Field(None, description="python on the nodes (default: this interpreter)")
    wait_timeout: float = Field(600.0, gt=0, description="seconds to wait for the first worker")

    @field_validator("walltime")
    @classmethod
    def _check_walltime(cls, value: str) -> str:
        walltime_seconds(value)
        return value


def walltime_seconds(walltime: str) -> int:
    """``"HH:MM:SS"`` / ``"MM:SS"`` / ``"D-HH:MM:SS"`` -> seconds.

    >>> walltime_seconds("01:30:00"), walltime_seconds("1-00:00:10")
    (5400, 86410)
    """
    days = 0
    text = walltime.strip()
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"walltime {walltime!r} is not {_WALLTIME_HELP}")
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return days * 86400 + seconds


def _lifetime_args(walltime: str) -> list[str]:
    # Retire a worker ~5 minutes (or 10 %) before the walltime so that no video is killed half-way;
    # the scheduler moves its queued videos elsewhere and adapt() starts a replacement job.
    total = walltime_seconds(walltime)
    margin = min(300, max(30, total // 10))
    lifetime = max(60, total - margin)
    return ["--lifetime", f"{lifetime}s", "--lifetime-stagger", f"{min(120, margin // 2)}s"]


def cluster_kwargs(cfg: JobQueueConfig) -> dict[str, Any]:
    """The dask-jobqueue constructor arguments for ``cfg`` (separate so it is testable without a
    cluster)."""
    extra = list(cfg.job_extra)
    if cfg.gpus:
        if cfg.kind == "slurm":
            extra.append(f"--gres=gpu:{cfg.gpus}")
        else:
            extra.append(f"-l ngpus={cfg.gpus}")
    kwargs: dict[str, Any] = {
        "cores": cfg.cores,
        # One worker process per job: one model per process, all its cores for torch threads.
        "processes": 1,
        "memory": cfg.memory,
        "walltime": cfg.walltime,
        "job_extra_directives": extra,
        "worker_extra_args": _lifetime_args(cfg.walltime),
        "python": cfg.python or sys.executable,
    }
    for key in ("queue", "account", "interface", "local_directory", "log_directory"):
        value = getattr(cfg, key)
        if value is not None:
            kwargs[key] = value
    if cfg.scheduler_host:
        kwargs["scheduler_options"] = {"host": cfg.scheduler_host}
    return kwargs


def start_jobqueue_cluster(cfg: JobQueueConfig):  # -> (cluster, distributed.Client)
    """Start the batch cluster, keep ``cfg.jobs`` jobs alive and wait for the first worker.

    Raises:
        WsvadError: dask-jobqueue is not installed, or no worker started within ``wait_timeout``
            (the message carries what the batch system said: dask-jobqueue only logs sbatch errors).
    """
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise WsvadError(
            "--cluster slurm/pbs needs dask-jobqueue: pip install 'wsvad[slurm]'"
        ) from exc
    from distributed import Client

    cluster_cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[cfg.kind]
    captured = _CaptureErrors()
    logging.getLogger("distributed.deploy").addHandler(captured)
    logging.getLogger("dask_jobqueue").addHandler(captured)
    cluster = cluster_cls(**cluster_kwargs(cfg))
    log.info("batch job script:\n%s", cluster.job_script())
    cluster.adapt(minimum_jobs=cfg.jobs, maximum_jobs=cfg.jobs)
    client = Client(cluster)
    try:
        client.wait_for_workers(1, timeout=cfg.wait_timeout)
    except Exception as exc:  # distributed raises TimeoutError of its own kind
        status = _queue_status(cfg.kind)
        client.close()
        cluster.close()
        detail = "; ".join(captured.messages[-3:]) or "no error was reported by the batch system"
        raise WsvadError(
            f"no {cfg.kind} worker started within {cfg.wait_timeout:.0f}s: {detail}"
            + (f"; queue: {status}" if status else "")
        ) from exc
    finally:
        logging.getLogger("distributed.deploy").removeHandler(captured)
        logging.getLogger("dask_jobqueue").removeHandler(captured)
    return cluster, client


class _CaptureErrors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().strip().replace("\n", " ")[:300])


def _queue_status(kind: BatchKind) -> str:
    command = ["squeue", "-h", "-o", "%i %T %r"] if kind == "slurm" else ["qstat"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return " | ".join(out.stdout.strip().splitlines()[:5]) or out.stderr.strip()[:200]


def jobqueue_config(kind: BatchKind, options: dict[str, Any]) -> JobQueueConfig:
    """``cluster.options`` of a ``slurm``/``pbs`` cluster config, validated (unknown keys are
    refused)."""
    try:
        return JobQueueConfig.model_validate({**options, "kind": kind})
    except ValidationError as exc:
        from wsvad.config import format_validation_error

        raise WsvadError(
            format_validation_error(exc, "cluster.options").replace("\n", "; ")
        ) from exc


@contextmanager
def _batch_runner(kind: BatchKind, cfg: ClusterConfig) -> Iterator[Runner]:
    # distributed is imported for its config defaults: dask.config.set() below restores only what
    # it changed, so they must be loaded before it
    import dask
    import distributed  # noqa: F401

    jq = jobqueue_config(kind, cfg.options)
    if jq.gpus > 1:
        log.warning(
            "--gpus %d: each job runs one worker, which uses one GPU; ask for --gpus 1 and "
            "--jobs %d instead to use them all",
            jq.gpus,
            jq.jobs * jq.gpus,
        )
    # as for the local kind (see pipeline/cluster.py): a job that dies retries only the task it ran
    with dask.config.set(
        {
            "distributed.scheduler.allowed-failures": cfg.allowed_failures,
            "distributed.scheduler.worker-saturation": 1.0,
        }
    ):
        cluster, client = start_jobqueue_cluster(jq)
    runner = DaskRunner(client)
    # only the first job is waited for; the others join while tasks run, so count the jobs asked for
    # (it decides whether long videos are split into pieces)
    runner.n_workers = jq.jobs
    try:
        yield runner
    finally:
        runner.close()
        client.close()
        cluster.close()


@register_cluster("slurm")
def _slurm(cfg: ClusterConfig):
    return _batch_runner("slurm", cfg)


@register_cluster("pbs")
def _pbs(cfg: ClusterConfig):
    return _batch_runner("pbs", cfg)
