"""``wsvad datasets``, ``wsvad check`` and ``wsvad synth``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console, err_console, progress_bar
from wsvad.errors import EXIT_ERROR, EXIT_OK

Opt = typer.Option
MAX_ROWS_PER_KIND = 10  # detail rows shown per problem kind unless --all


@app.command()
def datasets() -> int:
    """List the dataset adapters and what each expects on disk."""
    from rich.table import Table

    from wsvad.data import list_datasets

    table = Table(title="dataset adapters (--dataset NAME --root DIR)", show_lines=True)
    table.add_column("name", style="bold")
    table.add_column("what", overflow="fold")
    table.add_column("expected on disk", overflow="fold")
    for adapter in list_datasets():
        table.add_row(adapter.name, adapter.summary, adapter.layout)
    console.print(table)
    return EXIT_OK


@app.command()
def check(
    dataset: Annotated[
        str,
        Opt(
            help="Dataset adapter: ucf, shanghaitech, xd, folder, synthetic (see `wsvad datasets`). Required."
        ),
    ],
    root: Annotated[Path, Opt(help="Dataset root folder. Required.")],
    probe: Annotated[
        str,
        Opt(
            help="Frame counts read from video headers (PyAV) to check intervals: annotated (test videos with intervals), all (also finds unreadable videos) or none. Default: annotated."
        ),
    ] = "annotated",
    train_list: Annotated[
        Path | None,
        Opt(
            help="Training split list to use instead of the one found under ROOT (ucf, xd, shanghaitech, synthetic). Default: found under ROOT."
        ),
    ] = None,
    test_list: Annotated[
        Path | None,
        Opt(
            help="Test split list to use instead of the one found under ROOT (ucf, xd, shanghaitech, synthetic). Default: found under ROOT."
        ),
    ] = None,
    annotations: Annotated[
        Path | None,
        Opt(help="Temporal annotation file (ucf, xd, synthetic). Default: found under ROOT."),
    ] = None,
    mask_dir: Annotated[
        Path | None,
        Opt(
            help="Folder of <id>.npy frame masks (shanghaitech). Default: every test_frame_mask/ under ROOT."
        ),
    ] = None,
    labels: Annotated[
        Path | None, Opt(help="labels.csv to use (folder). Default: ROOT/labels.csv if present.")
    ] = None,
    show_all: Annotated[
        bool,
        Opt(
            "--all",
            help=f"Show every problem, not the first {MAX_ROWS_PER_KIND} of each kind. Default: off.",
        ),
    ] = False,
) -> int:
    """Parse a dataset layout and report its problems as tables; exit 1 when there are errors."""
    from rich.table import Table

    from wsvad.data.check import check_frames, load_with_options, summarize
    from wsvad.errors import WsvadError

    if probe not in ("annotated", "all", "none"):
        raise WsvadError(f"--probe {probe!r}: must be annotated, all or none")
    options = {
        "train_list": train_list,
        "test_list": test_list,
        "annotations": annotations,
        "mask_dir": mask_dir,
        "labels": labels,
    }
    index = load_with_options(dataset, root, **options)
    with _progress(f"probing frame counts ({probe})") as on_progress:
        problems = index.problems + check_frames(index.records, probe, on_progress)

    counts = Counter((r.split, r.label) for r in index.records)
    overview = Table(title=f"{dataset} at {root}")
    for column in ("split", "videos", "normal", "abnormal", "unlabelled"):
        overview.add_column(column, justify="right" if column != "split" else "left")
    for split in ("train", "test"):
        n = sum(v for (s, _), v in counts.items() if s == split)
        overview.add_row(
            split,
            str(n),
            str(counts[(split, 0)]),
            str(counts[(split, 1)]),
            str(counts[(split, -1)]),
        )
    console.print(overview)
    console.print(f"classes: {', '.join(index.class_names)}")

    if not problems:
        console.print("no problems found")
        return EXIT_OK
    summary = Table(title="problems")
    for column in ("severity", "kind", "count", "example"):
        summary.add_column(column, overflow="fold")
    for severity, kind, count, example in summarize(problems):
        summary.add_row(_severity(severity), kind, str(count), example)
    console.print(summary)

    details = Table(
        title="details"
        if show_all
        else f"details (first {MAX_ROWS_PER_KIND} of each kind; --all for every one)"
    )
    for column in ("severity", "kind", "video", "message"):
        details.add_column(column, overflow="fold")
    shown: Counter = Counter()
    for p in sorted(problems, key=lambda p: (p.severity != "error", p.kind)):
        shown[p.kind] += 1
        if show_all or shown[p.kind] <= MAX_ROWS_PER_KIND:
            details.add_row(_severity(p.severity), p.kind, p.video_id or "", p.message)
    console.print(details)
    n_errors = sum(p.severity == "error" for p in problems)
    if n_errors:
        err_console.print(
            f"{n_errors} error(s), {len(problems) - n_errors} warning(s): extraction and training refuse this layout unless told to skip the affected videos"
        )
        return EXIT_ERROR
    return EXIT_OK


@app.command()
def synth(
    out: Annotated[
        Path | None,
        Opt(
            help="Folder to write the dataset to (created; an unfinished run with the same parameters resumes). Required."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        Opt(help="Random seed; the same seed and sizes give the same videos. Default: 0."),
    ] = None,
    preset: Annotated[
        str | None,
        Opt(
            help="Size preset: default (60+30 videos, 8-20 s, 320x240), demo (16+8 videos, 4-6 s, 160x120, 3 classes, for `make demo`) or tiny (tests). Default: default."
        ),
    ] = None,
    n_train: Annotated[
        int | None, Opt(help="Training videos (about half abnormal). Default: 60, or the preset's.")
    ] = None,
    n_test: Annotated[
        int | None, Opt(help="Test videos (about half abnormal). Default: 30, or the preset's.")
    ] = None,
    min_seconds: Annotated[
        float | None, Opt(help="Shortest video in seconds. Default: 8.0, or the preset's.")
    ] = None,
    max_seconds: Annotated[
        float | None, Opt(help="Longest video in seconds. Default: 20.0, or the preset's.")
    ] = None,
    size: Annotated[
        str | None,
        Opt(help="Frame size WIDTHxHEIGHT (even numbers). Default: 320x240, or the preset's."),
    ] = None,
    fps: Annotated[int | None, Opt(help="Frames per second. Default: 30.")] = None,
    crf: Annotated[
        int | None, Opt(help="x264 quality (0 lossless .. 51 worst). Default: 23.")
    ] = None,
    classes: Annotated[
        str | None,
        Opt(
            help="Comma-separated anomaly classes among Fighting, Running, Explosion, AbandonedObject. Default: all four, or the preset's."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        Opt(
            "--config",
            "-c",
            help="YAML config (configs/synth/); named options override it. Default: none.",
        ),
    ] = None,
    sets: Annotated[
        list[str] | None,
        Opt("--set", help="Override any config key: key=value (repeatable). Default: none."),
    ] = None,
) -> int:
    """Generate a synthetic fixed-camera surveillance dataset in the UCF-Crime layout."""
    from wsvad.config import load_config
    from wsvad.data.synth import SynthConfig, write_dataset

    flags = {
        "out": out,
        "seed": seed,
        "preset": preset,
        "n_train": n_train,
        "n_test": n_test,
        "min_seconds": min_seconds,
        "max_seconds": max_seconds,
        "size": size,
        "fps": fps,
        "crf": crf,
        "classes": [c.strip() for c in classes.split(",") if c.strip()]
        if classes is not None
        else None,
    }
    cfg = load_config(SynthConfig, config, flags, sets)
    with _progress("synth") as on_progress:
        summary = write_dataset(cfg, on_progress)
    console.print(
        f"{summary.out}: {summary.n_videos} videos ({summary.n_generated} written now), {summary.n_frames} frames, "
        f"{summary.seconds:.1f} s; read it with --dataset ucf --root {summary.out}",
        markup=False,
        soft_wrap=True,
    )
    return EXIT_OK


def _severity(severity: str) -> str:
    return "[red]error[/red]" if severity == "error" else "[yellow]warning[/yellow]"


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr fed by a ``(done, total)`` callback; shows nothing until called."""
    bar = progress_bar(label, elapsed=True)
    tasks: list = []

    def on_progress(done: int, total: int) -> None:
        if not tasks:
            tasks.append(bar.add_task(label, total=total))
        bar.update(tasks[0], completed=done)

    with bar:
        yield on_progress
