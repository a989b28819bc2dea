"""``wsvad extract``, ``wsvad info`` and ``wsvad backbones``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console, err_console, progress_bar
from wsvad.errors import EXIT_OK, EXIT_PARTIAL, WsvadError

Opt = typer.Option


@app.command()
def extract(
    dataset: Annotated[
        str | None,
        Opt(help="Dataset adapter: ucf, shanghaitech, xd, folder, synthetic. Default: folder."),
    ] = None,
    root: Annotated[
        Path | None, Opt(help="Dataset root folder. Required (here or in --config).")
    ] = None,
    out: Annotated[Path | None, Opt(help="Feature store to write (a folder). Required.")] = None,
    crops: Annotated[
        int | None, Opt(help="1 (centre), 5 (corners + centre) or 10 (5 + flipped). Default: 10.")
    ] = None,
    config: Annotated[
        Path | None,
        Opt(
            "--config",
            "-c",
            help="YAML config (configs/extract/); named options override it. Default: none.",
        ),
    ] = None,
    backbone: Annotated[
        str | None, Opt(help="Backbone (see `wsvad backbones`). Default: i3d.")
    ] = None,
    weights: Annotated[
        Path | None,
        Opt(help="Weights file for backbones that need one (c3d, i3d_r50). Default: none."),
    ] = None,
    workers: Annotated[
        int | None,
        Opt(
            help="Worker processes of a local dask cluster; 0 runs inline without dask. Default: 1."
        ),
    ] = None,
    threads_per_worker: Annotated[
        int | None, Opt(help="Compute (torch) threads per worker. Default: cores / workers.")
    ] = None,
    scheduler: Annotated[
        str | None,
        Opt(help="Attach to a running dask scheduler at this address instead. Default: none."),
    ] = None,
    device: Annotated[str | None, Opt(help="cpu, cuda or cuda:N. Default: cpu.")] = None,
    decoder: Annotated[
        str | None, Opt(help="auto (decord, PyAV if decord fails), decord or av. Default: auto.")
    ] = None,
    snippet_len: Annotated[
        int | None, Opt(help="Frames per snippet. Default: the backbone's (16 for i3d).")
    ] = None,
    stride: Annotated[
        int | None, Opt(help="Frames between snippet starts. Default: snippet length.")
    ] = None,
    tail: Annotated[
        str | None,
        Opt(
            help="Last incomplete snippet: drop, pad (repeat last frame) or loop (wrap to start). Default: pad."
        ),
    ] = None,
    resize: Annotated[
        str | None,
        Opt(
            help="short<N> (e.g. short256) or <W>x<H> (e.g. 340x256). Default: the backbone's (short256)."
        ),
    ] = None,
    fps: Annotated[
        float | None, Opt(help="Resample videos to this frame rate. Default: native fps.")
    ] = None,
    dtype: Annotated[
        str | None, Opt(help="Stored dtype: float32 or float16. Default: float32.")
    ] = None,
    segments: Annotated[
        int | None,
        Opt(
            help="Store T segments per video instead of snippets (Sultani: 32). Default: off (snippets)."
        ),
    ] = None,
    segment_rule: Annotated[
        str | None,
        Opt(
            help="Segment boundaries with --segments: sultani (rounded linspace, mean, L2) or rtfm. Default: sultani."
        ),
    ] = None,
    split: Annotated[
        str | None, Opt(help="Videos to extract: train, test or all. Default: all.")
    ] = None,
    overwrite: Annotated[
        bool, Opt("--overwrite", help="Replace a store made with a different config. Default: off.")
    ] = False,
    skip_invalid: Annotated[
        bool,
        Opt(
            "--skip-invalid",
            help="Skip videos with dataset errors instead of refusing. Default: off.",
        ),
    ] = False,
    sets: Annotated[
        list[str] | None,
        Opt("--set", help="Override any config key: key.path=value (repeatable). Default: none."),
    ] = None,
    cluster: Annotated[
        str | None,
        Opt(
            "--cluster",
            help="Where workers run: inline, local, scheduler, slurm or pbs. Default: local (--workers).",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        Opt(help="slurm/pbs: batch jobs kept running, one dask worker each. Default: 1."),
    ] = None,
    cores: Annotated[
        int | None, Opt(help="slurm/pbs: CPU cores per job (also the model's threads). Default: 2.")
    ] = None,
    memory: Annotated[
        str | None, Opt(help="slurm/pbs: memory per job, e.g. 16GB. Default: 8GB.")
    ] = None,
    gpus: Annotated[
        int | None, Opt(help="slurm/pbs: GPUs per job (--gres=gpu:N / -l ngpus=N). Default: 0.")
    ] = None,
    queue: Annotated[
        str | None, Opt(help="slurm/pbs: partition or queue. Default: the batch system's default.")
    ] = None,
    walltime: Annotated[
        str | None,
        Opt(help="slurm/pbs: job walltime HH:MM:SS; workers retire before it. Default: 04:00:00."),
    ] = None,
    account: Annotated[str | None, Opt(help="slurm/pbs: account to charge. Default: none.")] = None,
    job_extra: Annotated[
        list[str] | None,
        Opt(
            "--job-extra",
            help="slurm/pbs: extra #SBATCH/#PBS directive (repeatable). Default: none.",
        ),
    ] = None,
    gpus_per_node: Annotated[
        int | None,
        Opt(
            help="local: one worker per GPU, each pinned to its GPU (use with --device cuda). Default: 0 (off)."
        ),
    ] = None,
    precision: Annotated[
        str | None,
        Opt(help="Model compute precision: fp32, bf16 or fp16 (autocast). Default: fp32."),
    ] = None,
    compile_model: Annotated[
        bool,
        Opt(
            "--compile",
            help="torch.compile the backbone (slow start, faster long GPU runs). Default: off.",
        ),
    ] = False,
    shard: Annotated[
        str | None,
        Opt(
            help="K/N: extract only shard K (0..N-1) of the sorted video ids into an existing store (job arrays). Default: all."
        ),
    ] = None,
    prepare_only: Annotated[
        bool,
        Opt(
            "--prepare-only",
            help="Create the store and record the expected videos, extract nothing (job-array setup step). Default: off.",
        ),
    ] = False,
    check_only: Annotated[
        bool,
        Opt(
            "--check-only",
            help="Extract nothing; exit 0 if every selected video is complete, 3 if some failed or are missing. Default: off.",
        ),
    ] = False,
) -> int:
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
        "cluster.threads_per_worker": threads_per_worker,
        "backbone_options.weights": None if weights is None else str(weights),
    }
    if workers is not None:
        if workers < 0:
            raise WsvadError(f"--workers {workers}: must be 0 (inline) or more")
        flags.update(
            {"cluster.kind": "inline"}
            if workers == 0
            else {"cluster.kind": "local", "cluster.workers": workers}
        )
    if scheduler is not None:
        flags.update({"cluster.kind": "scheduler", "cluster.scheduler": scheduler})
    flags.update(
        {
            "cluster.kind": cluster or flags.get("cluster.kind"),
            "cluster.gpus_per_node": gpus_per_node,
            "precision": precision,
            "compile": compile_model or None,
            "shard": shard,
        }
    )
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
    flags.update({f"cluster.options.{key}": value for key, value in batch.items()})
    cfg = load_config(ExtractConfig, config, flags, sets)
    if prepare_only and check_only:
        raise WsvadError("--prepare-only and --check-only exclude each other")
    if prepare_only or check_only:
        return _prepare_or_check(cfg, check_only)
    with _ProgressBar() as on_progress:
        summary = run_extract(cfg, progress=on_progress)
    console.print(
        f"{summary.store}: {summary.extracted} extracted, {summary.skipped} already complete, "
        f"{len(summary.failures)} failed, {summary.total} selected ({summary.seconds:.1f} s)",
        soft_wrap=True,
    )
    if summary.failures:
        err_console.print(
            f"{len(summary.failures)} video(s) failed (recorded in {summary.store}/failures.json):",
            markup=False,
            soft_wrap=True,
        )
        for vid, failure in sorted(summary.failures.items()):
            err_console.print(
                f"  {vid}: {failure['exception']}: {failure['reason']}",
                markup=False,
                soft_wrap=True,
            )
        return EXIT_PARTIAL
    return EXIT_OK


def _prepare_or_check(cfg, check_only: bool) -> int:
    from wsvad.extract.shards import check_store, prepare_store

    if not check_only:
        store, selected = prepare_store(cfg)
        console.print(
            f"{store.path}: ready for {selected} video(s) ({len(store.video_ids())} already complete)",
            soft_wrap=True,
        )
        return EXIT_OK
    report = check_store(cfg)
    console.print(
        f"{report.store}: {report.done} of {report.expected} complete, {len(report.failed)} failed, "
        f"{len(report.missing)} missing"
        + (f", {report.debris} half-written in .tmp" if report.debris else ""),
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
    return EXIT_OK if report.complete else EXIT_PARTIAL


class _ProgressBar:
    """Rich progress on stderr: videos done/total, frame-crops/s and ETA, fed by run_extract's callback."""

    def __enter__(self):
        import time

        self.progress = progress_bar(
            "extract",
            "videos",
            "{task.fields[rate]}",
            transient=False,
            disable=not err_console.is_terminal,
        )
        self.progress.__enter__()
        self.task = None
        self.began = time.perf_counter()
        self.clock = time.perf_counter
        return self.update

    def update(self, event) -> None:
        rate = event.frame_crops / max(1e-9, self.clock() - self.began)
        text = f"{rate:,.0f} frame-crops/s" + (f", {event.failed} failed" if event.failed else "")
        if self.task is None:
            self.task = self.progress.add_task("extract", total=event.total, rate=text)
        self.progress.update(self.task, completed=event.done, rate=text)

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)


@app.command()
def info(
    store_path: Annotated[
        Path | None, typer.Argument(metavar="STORE", help="Feature store to describe.")
    ] = None,
    store: Annotated[
        Path | None, Opt("--store", help="Same as the STORE argument. Default: none.")
    ] = None,
) -> None:
    """Summarise a feature store: videos done / failed / pending, feature shape, disk size, attrs, failures."""
    from rich.table import Table

    from wsvad.pipeline.store import FeatureStore

    path = store_path or store
    if path is None:
        raise WsvadError("give a store: wsvad info STORE")
    fs = FeatureStore.open(path)
    summary, attrs = fs.summary(), fs.attrs
    origin = _origin(attrs)
    # Imported features must never pass for extracted ones: the origin comes first, on one unwrapped line.
    table = Table(title=str(path), show_header=False)
    pending = "unknown" if summary["pending"] is None else str(summary["pending"])
    rows = [
        ("origin", origin),
        ("videos done", str(summary["done"])),
        ("videos failed", str(summary["failed"])),
        ("videos pending", pending),
        ("rows are", _rows_are(attrs)),
        ("rows", str(summary["snippets"])),
        (
            "feature shape",
            f"[T, {', '.join(map(str, summary['feature_shape']))}] {summary['dtype']}",
        ),
        ("disk size", _human_bytes(summary["disk_bytes"])),
    ]
    for key in (
        "dataset",
        "backbone",
        "weights_sha256",
        "snippet_len",
        "stride",
        "tail",
        "fps",
        "resize",
        "crop_size",
        "crops",
        "crop_order",
        "decoder",
        "provenance",
        "wsvad_version",
        "created",
        "config_hash",
    ):
        if key in attrs:
            value = attrs[key]
            rows.append(
                (key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
            )
    for key, value in rows:
        table.add_row(key, value)
    console.print(f"{path}: {origin}", markup=False, soft_wrap=True)
    console.print(table)
    failures = {k: v for k, v in fs.failures().items() if not fs.has_video(k)}
    if failures:
        console.print(f"failures ({len(failures)}):")
        for vid, failure in sorted(failures.items()):
            console.print(
                f"  {vid} [{failure.get('decoder')}] {failure.get('exception')}: {failure.get('reason')}",
                markup=False,
                soft_wrap=True,
            )


def _rows_are(attrs: dict) -> str:
    bagged = attrs.get("bagged")
    if isinstance(bagged, dict) and bagged.get("T"):
        return f"segments, {bagged['T']} per video ({bagged.get('rule')} rule)"
    return f"snippets of {attrs['snippet_len']} frames" if attrs.get("snippet_len") else "snippets"


@app.command()
def backbones() -> None:
    """List the registered feature backbones."""
    from rich.table import Table

    from wsvad.extract.backbones import get_backbone_spec, list_backbones

    table = Table("name", "feature shape", "snippet len", "crop size", "resize", "weights sha256")
    notes = []
    for name in list_backbones():
        spec = get_backbone_spec(name)
        weights = spec.weights_sha256[:12] if spec.weights_sha256 else "none"
        table.add_row(
            name,
            str(list(spec.feature_shape)),
            str(spec.snippet_len),
            str(spec.crop_size),
            spec.resize,
            weights,
        )
        notes.append(f"{name}: {spec.description}")
    console.print(table)
    for note in notes:
        console.print(note, markup=False, soft_wrap=True)


def _origin(attrs: dict) -> str:
    """``imported (format rtfm, publisher backbone i3d_r50 (RTFM))`` or ``extracted (backbone i3d)``."""
    prov = attrs.get("provenance") or {}
    if prov.get("kind") != "imported":
        return f"{prov.get('kind') or 'extracted'} (backbone {attrs.get('backbone')})"
    if "concatenated" in prov:  # wsvad concat: say where each half came from
        parts = [
            f"{k} {_origin({'provenance': prov.get(k) or {}, 'backbone': k})}"
            for k in ("video", "audio")
        ]
        return f"imported (concatenated: {'; '.join(parts)})"
    return f"imported (format {prov.get('format')}, publisher backbone {prov.get('publisher_backbone')})"


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
