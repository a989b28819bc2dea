"""``wsvad slurm-script``: write an sbatch job-array script for users who prefer plain job arrays."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console
from wsvad.errors import EXIT_OK, WsvadError

Opt = typer.Option


@app.command("slurm-script")
def slurm_script(
    out: Annotated[
        Path | None,
        Opt(help="Feature store the array writes (a folder on a shared filesystem). Required."),
    ] = None,
    dataset: Annotated[
        str | None, Opt(help="Dataset adapter, as for wsvad extract. Default: folder.")
    ] = None,
    root: Annotated[
        Path | None,
        Opt(help="Dataset root folder (shared filesystem). Required (here or in --config)."),
    ] = None,
    config: Annotated[
        Path | None,
        Opt("--config", "-c", help="Extract YAML config passed to every step. Default: none."),
    ] = None,
    backbone: Annotated[
        str | None, Opt(help="Backbone, as for wsvad extract. Default: i3d.")
    ] = None,
    crops: Annotated[int | None, Opt(help="1, 5 or 10 crops. Default: 10.")] = None,
    device: Annotated[
        str | None, Opt(help="cpu or cuda for every task. Default: cpu, or cuda when --gpus > 0.")
    ] = None,
    precision: Annotated[str | None, Opt(help="fp32, bf16 or fp16. Default: fp32.")] = None,
    dtype: Annotated[
        str | None, Opt(help="Stored dtype float32 or float16. Default: float32.")
    ] = None,
    sets: Annotated[
        list[str] | None,
        Opt("--set", help="Extract config override key.path=value (repeatable). Default: none."),
    ] = None,
    shards: Annotated[
        int,
        Opt(
            help="Array tasks; task K extracts every N-th video of the sorted list from the K-th. Default: 8."
        ),
    ] = 8,
    max_parallel: Annotated[
        int | None,
        Opt(
            help="At most this many array tasks at once (sbatch --array=0-N%M). Default: no limit."
        ),
    ] = None,
    cores: Annotated[
        int, Opt(help="CPU cores per array task (also the model's threads). Default: 4.")
    ] = 4,
    memory: Annotated[
        str, Opt(help="Memory per array task, e.g. 16GB or 16G. Default: 16GB.")
    ] = "16GB",
    gpus: Annotated[int, Opt(help="GPUs per array task (--gres=gpu:N). Default: 0.")] = 0,
    queue: Annotated[
        str | None, Opt(help="Partition for every job. Default: the cluster's default.")
    ] = None,
    account: Annotated[str | None, Opt(help="Account to charge. Default: none.")] = None,
    walltime: Annotated[
        str, Opt(help="Walltime of each job, HH:MM:SS. Default: 04:00:00.")
    ] = "04:00:00",
    job_extra: Annotated[
        list[str] | None,
        Opt(
            "--job-extra",
            help="Extra #SBATCH directive, e.g. --constraint=a100 (repeatable). Default: none.",
        ),
    ] = None,
    python: Annotated[
        str | None, Opt(help="Python with wsvad installed on the nodes. Default: this interpreter.")
    ] = None,
    log_dir: Annotated[
        Path | None,
        Opt(help="Where the jobs write their logs. Default: STORE.logs next to the store."),
    ] = None,
    script: Annotated[
        Path, Opt(help="The script file to write. Default: extract-array.sh.")
    ] = Path("extract-array.sh"),
) -> int:
    """Write an sbatch script: setup (creates the store) -> job array of shards -> completeness check.

    Submit it with `bash SCRIPT`. The extraction options are validated now, so mistakes surface here
    rather than in the queue.
    """
    from wsvad.config import load_config
    from wsvad.extract.config import ExtractConfig
    from wsvad.pipeline.jobarray import job_array_script
    from wsvad.pipeline.jobqueue import walltime_seconds

    if device is None and gpus:
        device = "cuda"
    named = {
        "dataset": dataset,
        "root": root,
        "out": out,
        "backbone": backbone,
        "crops": crops,
        "device": device,
        "precision": precision,
        "dtype": dtype,
    }
    cfg = load_config(ExtractConfig, config, named, sets)
    if cfg.root is None or cfg.out is None:
        raise WsvadError("slurm-script needs the dataset root (--root) and the store (--out)")
    try:
        walltime_seconds(walltime)
    except ValueError as exc:
        raise WsvadError(f"--walltime: {exc}") from exc
    args: list[str] = []
    if config is not None:
        args += ["--config", str(config.resolve())]
    for key, value in named.items():
        if value is not None:
            args += [
                f"--{key}",
                str(Path(value).resolve()) if isinstance(value, Path) else str(value),
            ]
    for item in sets or []:
        args += ["--set", item]
    logs = log_dir or cfg.out.resolve().with_name(cfg.out.name + ".logs")
    text = job_array_script(
        args,
        shards=shards,
        cores=cores,
        memory=memory,
        gpus=gpus,
        walltime=walltime,
        log_dir=str(Path(logs).resolve()),
        python=python or sys.executable,
        queue=queue,
        account=account,
        job_extra=job_extra or (),
        max_parallel=max_parallel,
    )
    script.parent.mkdir(parents=True, exist_ok=True)
    tmp = script.with_name(f".{script.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o755)
    tmp.replace(script)
    console.print(
        f"{script}: setup -> {shards} array task(s) -> check; submit with: bash {script}",
        soft_wrap=True,
    )
    return EXIT_OK
