"""``wsvad extract``: videos -> snippet features in a resumable zarr store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console, err_console
from wsvad.cli.options import (
    AccountOpt,
    BackboneOpt,
    ConfigOpt,
    CoresOpt,
    CropsOpt,
    DatasetOpt,
    DebugOpt,
    DecoderOpt,
    DeviceOpt,
    DtypeOpt,
    GpusOpt,
    JobExtraOpt,
    JobsOpt,
    MemoryOpt,
    OverwriteStoreOpt,
    PrecisionOpt,
    ProgressEveryOpt,
    QueueOpt,
    RootOpt,
    SetsOpt,
    StoreOutOpt,
    WalltimeOpt,
)
from wsvad.cli.progress import DEFAULT_EVERY_S, Reporter
from wsvad.errors import EXIT_PARTIAL, WsvadError

Opt = typer.Option

# Options of extract only; the shared ones are in wsvad.cli.options.
WeightsOpt = Annotated[
    Path | None,
    Opt(help="Weights file for backbones that need one (c3d, i3d_r50). Default: none."),
]
WorkersOpt = Annotated[
    int | None,
    Opt(help="Worker processes of a local dask cluster; 0 runs inline without dask. Default: 1."),
]
ThreadsPerWorkerOpt = Annotated[
    int | None, Opt(help="Compute (torch) threads per worker. Default: cores / workers.")
]
SchedulerOpt = Annotated[
    str | None,
    Opt(help="Attach to a running dask scheduler at this address instead. Default: none."),
]
SnippetLenOpt = Annotated[
    int | None, Opt(help="Frames per snippet. Default: the backbone's (16 for i3d).")
]
StrideOpt = Annotated[
    int | None, Opt(help="Frames between snippet starts. Default: the snippet length.")
]
TailOpt = Annotated[
    str | None,
    Opt(
        help="Last incomplete snippet: drop, pad (repeat the last frame) or loop (wrap to the "
        "start). Default: pad."
    ),
]
ResizeOpt = Annotated[
    str | None,
    Opt(
        help="Frame resize: short<N> (e.g. short256) or <W>x<H> (e.g. 340x256). "
        "Default: the backbone's (short256)."
    ),
]
FpsOpt = Annotated[
    float | None, Opt(help="Resample videos to this frame rate. Default: the native rate.")
]
SegmentsOpt = Annotated[
    int | None,
    Opt(
        help="Store T segments per video instead of snippets (Sultani: 32). "
        "Default: off (snippets)."
    ),
]
SegmentRuleOpt = Annotated[
    str | None,
    Opt(
        help="Segment boundaries with --segments: sultani (rounded linspace, mean, L2) or rtfm. "
        "Default: sultani."
    ),
]
SplitOpt = Annotated[str | None, Opt(help="Videos to extract: train, test or all. Default: all.")]
SkipInvalidOpt = Annotated[
    bool,
    Opt(
        "--skip-invalid", help="Skip videos with dataset errors instead of refusing. Default: off."
    ),
]
ClusterOpt = Annotated[
    str | None,
    Opt(
        "--cluster",
        help="Where workers run: inline, local, scheduler, slurm or pbs. "
        "Default: local (--workers).",
    ),
]
GpusPerNodeOpt = Annotated[
    int | None,
    Opt(
        help="local: one worker per GPU, each pinned to its GPU (use with --device cuda). "
        "Default: 0 (off)."
    ),
]
CompileOpt = Annotated[
    bool,
    Opt(
        "--compile",
        help="torch.compile the backbone (slow start, faster long GPU runs). Default: off.",
    ),
]
ShardOpt = Annotated[
    str | None,
    Opt(
        help="K/N: extract only shard K (0..N-1) of the sorted video ids into an existing store "
        "(job arrays). Default: all."
    ),
]
PrepareOnlyOpt = Annotated[
    bool,
    Opt(
        "--prepare-only",
        help="Create the store and record the expected videos, extract nothing (job-array "
        "setup step). Default: off.",
    ),
]
OnSuspectOpt = Annotated[
    str | None,
    Opt(
        help="A video decoded shorter or longer than its container declares (truncated, dropped "
        "frames): store it with a warning (store) or record it failed (fail). Default: store.",
    ),
]
CheckOnlyOpt = Annotated[
    bool,
    Opt(
        "--check-only",
        help="Extract nothing; exit 0 if every selected video is complete, 3 if some failed or "
        "are missing. Default: off.",
    ),
]


@app.command()
def extract(
    dataset: DatasetOpt = None,
    root: RootOpt = None,
    out: StoreOutOpt = None,
    crops: CropsOpt = None,
    config: ConfigOpt = None,
    backbone: BackboneOpt = None,
    weights: WeightsOpt = None,
    workers: WorkersOpt = None,
    threads_per_worker: ThreadsPerWorkerOpt = None,
    scheduler: SchedulerOpt = None,
    device: DeviceOpt = None,
    decoder: DecoderOpt = None,
    snippet_len: SnippetLenOpt = None,
    stride: StrideOpt = None,
    tail: TailOpt = None,
    resize: ResizeOpt = None,
    fps: FpsOpt = None,
    dtype: DtypeOpt = None,
    segments: SegmentsOpt = None,
    segment_rule: SegmentRuleOpt = None,
    split: SplitOpt = None,
    overwrite: OverwriteStoreOpt = False,
    skip_invalid: SkipInvalidOpt = False,
    sets: SetsOpt = None,
    cluster: ClusterOpt = None,
    jobs: JobsOpt = None,
    cores: CoresOpt = None,
    memory: MemoryOpt = None,
    gpus: GpusOpt = None,
    queue: QueueOpt = None,
    walltime: WalltimeOpt = None,
    account: AccountOpt = None,
    job_extra: JobExtraOpt = None,
    gpus_per_node: GpusPerNodeOpt = None,
    precision: PrecisionOpt = None,
    compile_model: CompileOpt = False,
    shard: ShardOpt = None,
    on_suspect: OnSuspectOpt = None,
    prepare_only: PrepareOnlyOpt = False,
    check_only: CheckOnlyOpt = False,
    progress_every: ProgressEveryOpt = DEFAULT_EVERY_S,
    debug: DebugOpt = False,
) -> None:
    # Over 60 lines only because of its signature (one line per option); the body is short.
    """Decode videos, extract snippet features, write them to a resumable zarr store.

    Exit codes: 0 all videos done; 3 finished but some videos failed (listed); 1 error.
    """
    from wsvad.config import load_config
    from wsvad.extract.config import ExtractConfig
    from wsvad.extract.run import run_extract

    flags = {
        "dataset": dataset,
        "root": root,
        "out": out,
        "crops": crops,
        "backbone": backbone,
        "device": device,
        "decoder": decoder,
        "snippet_len": snippet_len,
        "stride": stride,
        "tail": tail,
        "resize": resize,
        "fps": fps,
        "dtype": dtype,
        "split": split,
        "segments": segments,
        "segment_rule": segment_rule,
        "overwrite": overwrite or None,
        "skip_invalid": skip_invalid or None,
        "backbone_options.weights": None if weights is None else str(weights),
        "precision": precision,
        "compile": compile_model or None,
        "shard": shard,
        "on_suspect": on_suspect,
        **_cluster_flags(cluster, workers, threads_per_worker, scheduler, gpus_per_node),
        **_batch_job_flags(jobs, cores, memory, gpus, queue, walltime, account, job_extra),
    }
    cfg = load_config(ExtractConfig, config, flags, sets)
    if prepare_only and check_only:
        raise WsvadError("--prepare-only and --check-only exclude each other")
    if prepare_only:
        _prepare(cfg)
    elif check_only:
        _check(cfg)
    else:
        resumed = already_complete(cfg.out, cfg.overwrite)
        with _ExtractProgress(progress_every, resumed) as on_progress:
            summary = run_extract(cfg, progress=on_progress)
        _report(summary)


def _cluster_flags(
    cluster: str | None,
    workers: int | None,
    threads_per_worker: int | None,
    scheduler: str | None,
    gpus_per_node: int | None,
) -> dict[str, object]:
    """The ``cluster.*`` config keys of the shortcuts: ``--workers 0`` runs inline, ``--workers N``
    on a local cluster, ``--scheduler ADDRESS`` on a running one; ``--cluster`` names the kind and
    wins over both."""
    flags: dict[str, object] = {
        "cluster.threads_per_worker": threads_per_worker,
        "cluster.gpus_per_node": gpus_per_node,
    }
    if workers is not None and workers < 0:
        raise WsvadError(f"--workers {workers}: must be 0 (inline) or more")
    if workers == 0:
        flags["cluster.kind"] = "inline"
    elif workers is not None:
        flags.update({"cluster.kind": "local", "cluster.workers": workers})
    if scheduler is not None:
        flags.update({"cluster.kind": "scheduler", "cluster.scheduler": scheduler})
    if cluster:
        flags["cluster.kind"] = cluster
    return flags


def _batch_job_flags(
    jobs: int | None,
    cores: int | None,
    memory: str | None,
    gpus: int | None,
    queue: str | None,
    walltime: str | None,
    account: str | None,
    job_extra: list[str] | None,
) -> dict[str, object]:
    """The ``cluster.options.*`` config keys (``JobQueueConfig``'s fields, used by --cluster
    slurm|pbs); options not given are left to the config file or the model's defaults."""
    batch = {
        "jobs": jobs,
        "cores": cores,
        "memory": memory,
        "gpus": gpus,
        "queue": queue,
        "walltime": walltime,
        "account": account,
        "job_extra": job_extra or None,
    }
    return {f"cluster.options.{key}": value for key, value in batch.items()}


def _report(summary) -> None:
    """One summary line on stdout; a warning on stderr for suspect videos stored; the failed
    videos on stderr and exit 3 when there are any."""
    console.print(
        f"{summary.store}: {summary.extracted} extracted, {summary.skipped} already complete, "
        f"{len(summary.failures)} failed, {summary.total} selected ({summary.seconds:.1f} s)",
        soft_wrap=True,
    )
    if summary.precision:
        console.print(summary.precision, markup=False, soft_wrap=True)
    if summary.suspects:
        err_console.print(
            f"warning: {len(summary.suspects)} suspect video(s) stored, decoded length disagrees "
            f"with the container (`suspect` attr; `wsvad info {summary.store}`; "
            "--on-suspect fail refuses them):",
            markup=False,
            soft_wrap=True,
        )
    for vid, suspect in sorted(summary.suspects.items()):
        err_console.print(f"  {vid}: {suspect['reason']}", markup=False, soft_wrap=True)
    if not summary.failures:
        return
    err_console.print(
        f"{len(summary.failures)} video(s) failed (recorded in {summary.store}/failures):",
        markup=False,
        soft_wrap=True,
    )
    for vid, failure in sorted(summary.failures.items()):
        err_console.print(
            f"  {vid}: {failure['exception']}: {failure['reason']}", markup=False, soft_wrap=True
        )
    raise typer.Exit(EXIT_PARTIAL)


def _prepare(cfg) -> None:
    """``--prepare-only``: create the store and record the expected videos (job-array setup)."""
    from wsvad.extract.shards import prepare_store

    store, selected = prepare_store(cfg)
    done = len(store.video_ids())
    console.print(
        f"{store.path}: ready for {selected} video(s) ({done} already complete)", soft_wrap=True
    )


def _check(cfg) -> None:
    """``--check-only``: count complete, failed and missing videos; exit 3 unless all are done."""
    from wsvad.extract.shards import check_store

    report = check_store(cfg)
    debris = f", {report.debris} half-written in .tmp" if report.debris else ""
    console.print(
        f"{report.store}: {report.done} of {report.expected} complete, "
        f"{len(report.failed)} failed, {len(report.missing)} missing{debris}",
        soft_wrap=True,
    )
    for vid, failure in sorted(report.failed.items()):
        err_console.print(
            f"  failed {vid}: {failure.get('exception')}: {failure.get('reason')}",
            markup=False,
            soft_wrap=True,
        )
    for vid in report.missing:
        err_console.print(f"  missing {vid}", markup=False, soft_wrap=True)
    if not report.complete:
        raise typer.Exit(EXIT_PARTIAL)


class _ExtractProgress:
    """Videos done/total, frame-crops/s and ETA (a bar, or log lines), fed by run_extract's
    callback."""

    def __init__(self, every: float, resumed: int = 0):
        self.reporter = Reporter("extract", "videos", every)
        self.resumed = f", resumed: {resumed} videos already complete" if resumed else ""

    def __enter__(self):
        import time

        self.reporter.__enter__()
        self.began = time.perf_counter()
        self.clock = time.perf_counter
        return self.update

    def update(self, event) -> None:
        rate = event.frame_crops / max(1e-9, self.clock() - self.began)
        text = f"{rate:,.0f} frame-crops/s" + (f", {event.failed} failed" if event.failed else "")
        self.reporter.update(event.done, event.total, text + self.resumed)

    def __exit__(self, *exc) -> None:
        self.reporter.__exit__(*exc)


def already_complete(store_path, overwrite: bool) -> int:
    """How many videos a store being continued already holds (0 for a new or replaced store): the
    progress lines say so, as the summary does at the end."""
    from wsvad.pipeline.store import FeatureStore

    if store_path is None or overwrite or not FeatureStore.is_store(store_path):
        return 0
    return len(FeatureStore.open(store_path).video_ids())
