"""Options that several commands take, as ``Annotated`` aliases, so that each is one line in a
signature (``config: ConfigOpt = None``).

Options that only one module's commands take are aliased at the top of that module. Help texts
follow one style: what the option is, in one sentence, then ``Default: X.`` (or ``Required.``)
once. Option names are stable, scripts rely on them: add options, never rename one.

The batch-job options (``--cores`` ... ``--job-extra``) are the fields of
``wsvad.pipeline.jobqueue.JobQueueConfig``: ``extract --cluster slurm|pbs`` and ``slurm-script``
both default to that model's values, so the ``Default:`` texts here must match it (a test checks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

Opt = typer.Option


def one_of(choices: Callable[[], Sequence[Any]]) -> Callable[[Any], Any]:
    """An option callback that rejects a value outside ``choices()`` while parsing: bad usage,
    exit 2, before any work starts (``choices`` is called only when the option is given)."""

    def check(value: Any) -> Any:
        if value is None:
            return value
        allowed = list(choices())
        if value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(map(str, allowed))}")
        return value

    return check


def dataset_names() -> list[str]:
    from wsvad.data import list_datasets

    return [adapter.name for adapter in list_datasets()]


def detector_names() -> list[str]:
    from wsvad.detectors import list_detectors

    return list_detectors()


# wsvad.cli.run reads --debug from the argument list before parsing (logging is set up before any
# command runs); every command declares it so that `wsvad train --debug` parses and --help lists it.
DebugOpt = Annotated[
    bool,
    Opt(
        "--debug",
        help="Show full tracebacks instead of one-line errors (before or after the command). "
        "Default: off.",
    ),
]

# Configuration layers: YAML file < named options < --set.
ConfigOpt = Annotated[
    Path | None,
    Opt(
        "--config",
        "-c",
        help="YAML config (examples in configs/<command>/); named options override it. "
        "Default: none.",
    ),
]
SetsOpt = Annotated[
    list[str] | None,
    Opt("--set", help="Override any config key: key.path=value (repeatable). Default: none."),
]
SeedOpt = Annotated[
    int | None, Opt("--seed", help="Random seed; the same seed gives the same result. Default: 0.")
]
DeviceOpt = Annotated[
    str | None, Opt("--device", help="Torch device: cpu, cuda or cuda:N. Default: cpu.")
]

# Reading a dataset and writing a feature store (extract, slurm-script, score; import,
# train, export).
DatasetOpt = Annotated[
    str | None,
    Opt(
        "--dataset",
        help="Dataset adapter: ucf, shanghaitech, xd, folder, synthetic (see `wsvad datasets`). "
        "Default: folder.",
        callback=one_of(dataset_names),
    ),
]
RootOpt = Annotated[
    Path | None,
    Opt(
        "--root",
        help="Dataset root folder (videos, lists, annotations). Required (here or in --config).",
    ),
]
StoreOutOpt = Annotated[
    Path | None,
    Opt(
        "--out",
        help="Feature store to write, a folder (resumed if it exists with the same config). "
        "Required (here or in --config).",
    ),
]
BackboneOpt = Annotated[
    str | None, Opt("--backbone", help="Feature backbone (see `wsvad backbones`). Default: i3d.")
]
CropsOpt = Annotated[
    int | None,
    Opt(
        "--crops",
        help="Crops per frame: 1 (centre), 5 (corners + centre) or 10 (5 + flipped). Default: 10.",
        callback=one_of(lambda: (1, 5, 10)),
    ),
]
PrecisionOpt = Annotated[
    str | None,
    Opt(
        "--precision",
        help="Model compute precision: fp32, bf16 or fp16 (autocast). Default: fp32.",
        callback=one_of(lambda: ("fp32", "bf16", "fp16")),
    ),
]
DtypeOpt = Annotated[
    str | None,
    Opt(
        "--dtype",
        help="Stored feature dtype: float32 or float16. Default: float32.",
        callback=one_of(lambda: ("float32", "float16")),
    ),
]
DecoderOpt = Annotated[
    str | None,
    Opt(
        "--decoder",
        help="Video decoder: auto (decord, PyAV if decord fails), decord or av. Default: auto.",
        callback=one_of(lambda: ("auto", "decord", "av")),
    ),
]
OverwriteStoreOpt = Annotated[
    bool, Opt("--overwrite", help="Replace a store made with a different config. Default: off.")
]
StoreOpt = Annotated[
    Path | None, Opt("--store", help="Feature store to read. Required (here or in --config).")
]

ProgressEveryOpt = Annotated[
    float,
    Opt(
        "--progress-every",
        min=1,
        show_default=False,
        help="Seconds between progress lines when stderr is not a terminal (nohup, SLURM, CI "
        "logs); a terminal shows a bar. Default: 30.",
    ),
]

# Batch jobs on SLURM or PBS (JobQueueConfig's fields; None: the model's default).
JobsOpt = Annotated[
    int | None,
    Opt(
        "--jobs",
        help="Batch jobs kept running (--cluster slurm|pbs), one dask worker each. Default: 1.",
    ),
]
CoresOpt = Annotated[
    int | None,
    Opt("--cores", help="CPU cores per batch job (also the model's threads). Default: 4."),
]
MemoryOpt = Annotated[
    str | None, Opt("--memory", help="Memory per batch job, e.g. 16GB or 16G. Default: 16GB.")
]
GpusOpt = Annotated[
    int | None,
    Opt(
        "--gpus", help="GPUs per batch job (--gres=gpu:N on SLURM, -l ngpus=N on PBS). Default: 0."
    ),
]
QueueOpt = Annotated[
    str | None,
    Opt(
        "--queue",
        help="Partition (SLURM) or queue (PBS) of the batch jobs. Default: the system's default.",
    ),
]
WalltimeOpt = Annotated[
    str | None,
    Opt(
        "--walltime",
        help="Walltime of each batch job, HH:MM:SS. Default: 04:00:00.",
    ),
]
AccountOpt = Annotated[
    str | None, Opt("--account", help="Account charged for the batch jobs. Default: none.")
]
JobExtraOpt = Annotated[
    list[str] | None,
    Opt(
        "--job-extra",
        help="Extra #SBATCH/#PBS directive, e.g. --constraint=a100 (repeatable). Default: none.",
    ),
]
