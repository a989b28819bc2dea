"""dask-jobqueue settings, and a real SLURM cluster running dask workers."""

from __future__ import annotations

import pytest

from wsvad.errors import WsvadError
from wsvad.pipeline.jobqueue import (
    JobQueueConfig,
    cluster_kwargs,
    start_jobqueue_cluster,
    walltime_seconds,
)


def test_walltime_parsing():
    assert walltime_seconds("00:05:00") == 300
    assert walltime_seconds("2-01:00:00") == 2 * 86400 + 3600
    with pytest.raises(ValueError, match="walltime '1h' is not HH:MM:SS"):
        walltime_seconds("1h")


def test_bad_walltime_refused_at_config_time():
    with pytest.raises(ValueError, match="walltime"):
        JobQueueConfig(walltime="ten minutes")


def test_cluster_kwargs_map_the_options():
    cfg = JobQueueConfig(
        kind="slurm",
        jobs=4,
        cores=8,
        memory="32GB",
        gpus=2,
        queue="gpu",
        walltime="01:00:00",
        job_extra=["--exclusive"],
        python="/opt/env/bin/python",
    )
    kwargs = cluster_kwargs(cfg)
    assert kwargs["cores"] == 8 and kwargs["processes"] == 1 and kwargs["memory"] == "32GB"
    assert kwargs["queue"] == "gpu" and kwargs["python"] == "/opt/env/bin/python"
    assert kwargs["job_extra_directives"] == ["--exclusive", "--gres=gpu:2"]
    # retire 5 minutes before the 1 h walltime so no video is cut mid-write
    assert kwargs["worker_extra_args"] == ["--lifetime", "3300s", "--lifetime-stagger", "120s"]
    assert cluster_kwargs(JobQueueConfig(kind="pbs", gpus=1))["job_extra_directives"] == [
        "-l ngpus=1"
    ]


@pytest.mark.slurm
def test_real_slurm_cluster_runs_tasks(slurm_cluster, tmp_path):
    cfg = JobQueueConfig(
        jobs=2,
        cores=1,
        memory="1GB",
        queue="debug",
        walltime="00:05:00",
        scheduler_host="127.0.0.1",
        local_directory=str(tmp_path),
        log_directory=str(tmp_path / "logs"),
        wait_timeout=90,
    )
    cluster, client = start_jobqueue_cluster(cfg)
    try:
        client.wait_for_workers(2, timeout=90)
        hosts = client.run(lambda: __import__("os").environ.get("SLURM_JOB_ID"))
        assert len(hosts) == 2 and all(
            job_id for job_id in hosts.values()
        )  # each worker is a SLURM job
        assert client.gather(client.map(lambda x: x * x, range(6))) == [0, 1, 4, 9, 16, 25]
    finally:
        client.close()
        cluster.close()


@pytest.mark.slurm
def test_unsatisfiable_job_reports_instead_of_hanging(slurm_cluster, tmp_path):
    cfg = JobQueueConfig(
        jobs=1,
        cores=64,
        memory="1GB",
        queue="debug",
        walltime="00:05:00",
        scheduler_host="127.0.0.1",
        log_directory=str(tmp_path / "logs"),
        wait_timeout=8,
    )
    with pytest.raises(WsvadError, match="no slurm worker started within 8s"):
        start_jobqueue_cluster(cfg)
