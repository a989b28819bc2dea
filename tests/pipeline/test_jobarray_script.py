"""The sbatch job-array script and the batch-cluster options (no SLURM needed)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_OK, WsvadError
from wsvad.pipeline.cluster import ClusterConfig, open_client
from wsvad.pipeline.jobarray import job_array_script, sbatch_memory
from wsvad.pipeline.jobqueue import jobqueue_config


def test_sbatch_memory_units():
    assert sbatch_memory("16GB") == "15258M"  # 16e9 bytes, as dask-jobqueue reads "GB"
    assert sbatch_memory("16G") == "16384M" and sbatch_memory("16GiB") == "16384M"
    assert sbatch_memory("1.5T") == "1572864M" and sbatch_memory("900K") == "1M"
    with pytest.raises(WsvadError, match="--memory 'lots': expected a size such as 8GB"):
        sbatch_memory("lots")


def test_script_chains_setup_array_and_check():
    text = job_array_script(
        ["--root", "/data/ucf crime", "--set", "resize=short256"],
        shards=3,
        cores=6,
        memory="32G",
        gpus=1,
        walltime="12:00:00",
        log_dir="/logs",
        python="/env/bin/python",
        queue="gpu",
        account="lab",
        job_extra=["--constraint=a100"],
        max_parallel=2,
    )
    jobs = text.split("sbatch --parsable ")[1:]
    assert [j.split("\n", 1)[0] for j in jobs] == [
        "<<'WSVAD_SETUP'",
        "--dependency=afterok:\"$setup\" <<'WSVAD_ARRAY'",
        "--dependency=afterany:\"$array\" <<'WSVAD_CHECK'",
    ]
    setup, array, check = jobs
    base = "exec /env/bin/python -m wsvad extract --root '/data/ucf crime' --set resize=short256"
    assert f"{base} --prepare-only\n" in setup and f"{base} --check-only\n" in check
    assert f'{base} --workers 0 --threads-per-worker 6 --shard "$SLURM_ARRAY_TASK_ID/3"\n' in array
    for line in (
        "#SBATCH --array=0-2%2",
        "#SBATCH --cpus-per-task=6",
        "#SBATCH --mem=32768M",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --output=/logs/extract-%A_%a.out",
    ):
        assert line in array
    for job in jobs:  # the shared directives go to every job
        assert all(
            d in job
            for d in (
                "--time=12:00:00",
                "--partition=gpu",
                "--account=lab",
                "#SBATCH --constraint=a100",
            )
        )
    assert "--gres" not in setup and "--gres" not in check  # only the array needs GPUs
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    with pytest.raises(WsvadError, match="--shards 0: must be at least 1"):
        job_array_script(
            [], shards=0, cores=1, memory="1G", gpus=0, walltime="1:00", log_dir="/l", python="p"
        )


def test_slurm_script_cli_validates_and_writes_an_executable_script(tmp_path, capsys):
    script = tmp_path / "jobs" / "ucf.sh"
    base = [
        "slurm-script",
        "--dataset",
        "folder",
        "--root",
        str(tmp_path),
        "--out",
        str(tmp_path / "store"),
    ]
    assert (
        run([*base, "--shards", "4", "--script", str(script), "--gpus", "1", "--set", "crops=5"])
        == EXIT_OK
    )
    assert (
        f"{script}: setup -> 4 array task(s) -> check; submit with: bash {script}"
        in capsys.readouterr().out
    )
    text = script.read_text()
    assert script.stat().st_mode & 0o111 and "--array=0-3\n" in text
    assert (
        f"--out {shlex.quote(str(tmp_path / 'store'))} --device cuda --set crops=5" in text
    )  # --gpus implies cuda
    assert f"--output={tmp_path}/store.logs/setup-%j.out" in text
    assert run([*base, "--set", "crops=8", "--script", str(tmp_path / "x.sh")]) == 1
    assert "crops: should be 1, 5 or 10 (got 8)" in capsys.readouterr().err
    assert run([*base, "--walltime", "2h", "--script", str(tmp_path / "x.sh")]) == 1
    assert "--walltime: walltime '2h' is not HH:MM:SS" in capsys.readouterr().err
    assert (
        run(["slurm-script", "--out", str(tmp_path / "s"), "--script", str(tmp_path / "x.sh")]) == 1
    )
    assert (
        "slurm-script needs the dataset root (--root) and the store (--out)"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "x.sh").exists()


def test_extract_cli_maps_batch_options_into_the_cluster_config(tmp_path, monkeypatch):
    import wsvad.extract.run as run_module

    seen = {}

    def fake_run_extract(cfg, progress=None):
        seen["cfg"] = cfg
        return run_module.ExtractSummary(tmp_path, 0, 0, 0, {}, 0, 0.0)

    monkeypatch.setattr(run_module, "run_extract", fake_run_extract)
    code = run(
        [
            "extract",
            "--root",
            str(tmp_path),
            "--out",
            str(tmp_path / "s"),
            "--cluster",
            "slurm",
            "--jobs",
            "8",
            "--cores",
            "6",
            "--memory",
            "40GB",
            "--gpus",
            "1",
            "--queue",
            "gpu",
            "--walltime",
            "08:00:00",
            "--account",
            "lab",
            "--job-extra",
            "--constraint=a100",
            "--job-extra",
            "--qos=long",
            "--device",
            "cuda",
            "--precision",
            "bf16",
            "--compile",
        ]
    )
    assert code == EXIT_OK
    cfg = seen["cfg"]
    assert cfg.cluster.kind == "slurm" and (cfg.precision, cfg.compile, cfg.device) == (
        "bf16",
        True,
        "cuda",
    )
    assert cfg.cluster.options == {
        "jobs": 8,
        "cores": 6,
        "memory": "40GB",
        "gpus": 1,
        "queue": "gpu",
        "walltime": "08:00:00",
        "account": "lab",
        "job_extra": ["--constraint=a100", "--qos=long"],
    }
    assert cfg.torch_threads == 6  # a job's cores, not this machine's
    jq = jobqueue_config("slurm", cfg.cluster.options)
    assert (jq.jobs, jq.gpus, jq.job_extra) == (8, 1, ["--constraint=a100", "--qos=long"])


def test_bad_batch_options_are_refused_before_any_job_is_submitted():
    with pytest.raises(WsvadError, match=r"cluster.options: jobz: unknown key \(got 2\)"):
        open_client(ClusterConfig(kind="slurm", options={"jobz": 2})).__enter__()
    with pytest.raises(
        WsvadError, match="cluster.options: walltime: walltime '1 day' is not HH:MM:SS"
    ):
        open_client(ClusterConfig(kind="pbs", options={"walltime": "1 day"})).__enter__()


def test_store_path_in_script_is_absolute(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert (
        run(["slurm-script", "--root", "videos", "--out", "store", "--script", "a.sh"]) == EXIT_OK
    )
    text = Path(tmp_path / "a.sh").read_text()
    assert (
        f"--root {tmp_path}/videos --out {tmp_path}/store " in text
    )  # tasks run in another directory


@pytest.mark.parametrize("kind", ["slurm", "pbs"])
def test_dask_jobqueue_job_scripts_carry_the_options(kind, tmp_path):
    import dask_jobqueue

    from wsvad.pipeline.jobqueue import JobQueueConfig, cluster_kwargs

    cfg = JobQueueConfig(
        kind=kind,
        cores=4,
        memory="16GB",
        gpus=1,
        queue="gpu",
        walltime="02:00:00",
        scheduler_host="127.0.0.1",
        log_directory=str(tmp_path),
    )
    cls = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[kind]
    with cls(**cluster_kwargs(cfg)) as cluster:  # renders the script; submits nothing
        script = cluster.job_script()
    expected = {
        "slurm": [
            "#SBATCH -p gpu",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH -t 02:00:00",
            "#SBATCH --gres=gpu:1",
        ],
        "pbs": [
            "#PBS -q gpu",
            "#PBS -l select=1:ncpus=4:mem=15GB",
            "#PBS -l walltime=02:00:00",
            "#PBS -l ngpus=1",
        ],
    }[kind]
    for line in expected:
        assert line in script, f"{line!r} not in:\n{script}"
    assert (
        "--lifetime 6900s" in script and "--nthreads 4" in script
    )  # retire 5 min before the walltime
