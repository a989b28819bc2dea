"""``wsvad slurm-script``: an sbatch job-array script, for users who prefer plain job arrays."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wsvad.atomic import atomic_path
from wsvad.cli.app import app, console
from wsvad.cli.options import (
    AccountOpt,
    BackboneOpt,
    ConfigOpt,
    CoresOpt,
    CropsOpt,
    DatasetOpt,
    DebugOpt,
    DtypeOpt,
    GpusOpt,
    JobExtraOpt,
    MemoryOpt,
    PrecisionOpt,
    QueueOpt,
    RootOpt,
    SetsOpt,
    StoreOutOpt,
    WalltimeOpt,
)
from wsvad.errors import WsvadError

if TYPE_CHECKING:
    from wsvad.pipeline.jobqueue import JobQueueConfig

Opt = typer.Option

# Options of slurm-script only; the shared ones are in wsvad.cli.options.
DeviceOpt = Annotated[
    str | None, Opt(help="Torch device of every task. Default: cpu, or cuda when --gpus > 0.")
]
ShardsOpt = Annotated[
    int,
    Opt(
        help="Array tasks; task K extracts every N-th video of the sorted list from the K-th. "
        "Default: 8.",
        show_default=False,
    ),
]
MaxParallelOpt = Annotated[
    int | None,
    Opt(help="At most this many array tasks at once (sbatch --array=0-N%M). Default: no limit."),
]
PythonOpt = Annotated[
    str | None, Opt(help="Python with wsvad installed on the nodes. Default: this interpreter.")
]
LogDirOpt = Annotated[
    Path | None,
    Opt(help="Where the jobs write their logs. Default: STORE.logs next to the store."),
]
ScriptOpt = Annotated[
    Path, Opt(help="The script file to write. Default: extract-array.sh.", show_default=False)
]


@app.command("slurm-script")
def slurm_script(
    out: StoreOutOpt = None,
    dataset: DatasetOpt = None,
    root: RootOpt = None,
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    crops: CropsOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    dtype: DtypeOpt = None,
    sets: SetsOpt = None,
    shards: ShardsOpt = 8,
    max_parallel: MaxParallelOpt = None,
    cores: CoresOpt = None,
    memory: MemoryOpt = None,
    gpus: GpusOpt = None,
    queue: QueueOpt = None,
    account: AccountOpt = None,
    walltime: WalltimeOpt = None,
    job_extra: JobExtraOpt = None,
    python: PythonOpt = None,
    log_dir: LogDirOpt = None,
    script: ScriptOpt = Path("extract-array.sh"),
    debug: DebugOpt = False,
) -> None:
    # Over 60 lines only because of its signature (one line per option); the body is short.
    """Write an sbatch script: setup (creates the store) -> job array of shards -> check.

    Submit it with `bash SCRIPT`. Every step gets the same extraction options (--config and --set
    included); they are validated now, so mistakes surface here rather than in the queue.
    """
    from wsvad.config import load_config
    from wsvad.extract.config import ExtractConfig
    from wsvad.pipeline.jobarray import job_array_script

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
    batch = _batch_options(cores, memory, gpus, queue, account, walltime, job_extra)
    logs = log_dir or cfg.out.resolve().with_name(cfg.out.name + ".logs")
    text = job_array_script(
        _extract_args(config, named, sets),
        shards=shards,
        cores=batch.cores,
        memory=batch.memory,
        gpus=batch.gpus,
        walltime=batch.walltime,
        log_dir=str(Path(logs).resolve()),
        python=python or sys.executable,
        queue=batch.queue,
        account=batch.account,
        job_extra=batch.job_extra,
        max_parallel=max_parallel,
    )
    _write_executable(script, text)
    console.print(
        f"{script}: setup -> {shards} array task(s) -> check; submit with: bash {script}",
        soft_wrap=True,
    )


def _batch_options(
    cores: int | None,
    memory: str | None,
    gpus: int | None,
    queue: str | None,
    account: str | None,
    walltime: str | None,
    job_extra: list[str] | None,
) -> JobQueueConfig:
    """The job options given, ``JobQueueConfig``'s defaults for the others (the defaults of
    ``wsvad extract --cluster slurm`` too). The walltime is checked here, the memory when the
    script is written (``sbatch_memory``)."""
    from wsvad.pipeline.jobqueue import JobQueueConfig, walltime_seconds

    given = {
        "cores": cores,
        "memory": memory,
        "gpus": gpus,
        "queue": queue,
        "account": account,
        "walltime": walltime,
        "job_extra": job_extra,
    }
    batch = JobQueueConfig.model_construct(**{k: v for k, v in given.items() if v is not None})
    try:
        walltime_seconds(batch.walltime)
    except ValueError as exc:
        raise WsvadError(f"--walltime: {exc}") from exc
    return batch


def _extract_args(config: Path | None, named: dict[str, Any], sets: list[str] | None) -> list[str]:
    """The ``wsvad extract`` options every step of the script repeats, paths made absolute (the
    jobs run in another directory)."""
    args: list[str] = []
    if config is not None:
        args += ["--config", str(config.resolve())]
    for key, value in named.items():
        if value is not None:
            text = str(Path(value).resolve()) if isinstance(value, Path) else str(value)
            args += [f"--{key}", text]
    for item in sets or []:
        args += ["--set", item]
    return args


def _write_executable(script: Path, text: str) -> None:
    """Write ``script`` atomically (a temporary file renamed over it), executable."""
    script.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(script) as tmp:
        # paths that are not UTF-8 go back to their own bytes: the shell sees the real file names
        tmp.write_bytes(text.encode("utf-8", "surrogateescape"))
        tmp.chmod(0o755)
