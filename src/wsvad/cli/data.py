"""``wsvad datasets``, ``wsvad check`` and ``wsvad synth``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console, err_console
from wsvad.cli.options import ConfigOpt, DebugOpt, SeedOpt, SetsOpt
from wsvad.cli.progress import Reporter
from wsvad.errors import EXIT_ERROR

Opt = typer.Option
MAX_ROWS_PER_KIND = 10  # detail rows shown per problem kind unless --all

# Options of datasets, check and synth only; the shared ones are in wsvad.cli.options.
CheckDatasetOpt = Annotated[
    str,
    Opt(
        "--dataset",
        help="Dataset adapter: ucf, shanghaitech, xd, folder, synthetic (see `wsvad datasets`). "
        "Required.",
    ),
]
CheckRootOpt = Annotated[Path, Opt("--root", help="Dataset root folder. Required.")]
ProbeOpt = Annotated[
    str,
    Opt(
        help="Videos whose frame counts (as extraction decodes them) check the intervals and "
        "are compared with their container's (suspect: truncated, dropped frames): annotated "
        "(test videos with intervals), all (also finds unreadable videos) or none. "
        "Default: annotated.",
        show_default=False,
    ),
]
TrainListOpt = Annotated[
    Path | None,
    Opt(
        help="Training split list to use instead of the one found under ROOT (ucf, xd, "
        "shanghaitech, synthetic). Default: found under ROOT."
    ),
]
TestListOpt = Annotated[
    Path | None,
    Opt(
        help="Test split list to use instead of the one found under ROOT (ucf, xd, "
        "shanghaitech, synthetic). Default: found under ROOT."
    ),
]
AnnotationsOpt = Annotated[
    Path | None,
    Opt(help="Temporal annotation file (ucf, xd, synthetic). Default: found under ROOT."),
]
MaskDirOpt = Annotated[
    Path | None,
    Opt(
        help="Folder of <id>.npy frame masks (shanghaitech). Default: every test_frame_mask/ "
        "under ROOT."
    ),
]
LabelsOpt = Annotated[
    Path | None, Opt(help="labels.csv to use (folder). Default: ROOT/labels.csv if present.")
]
ShowAllOpt = Annotated[
    bool,
    Opt(
        "--all",
        help=f"Show every problem, not the first {MAX_ROWS_PER_KIND} of each kind. Default: off.",
    ),
]
SynthOutOpt = Annotated[
    Path | None,
    Opt(
        "--out",
        help="Folder to write the dataset to (created; an unfinished run with the same "
        "parameters resumes). Required.",
    ),
]
PresetOpt = Annotated[
    str | None,
    Opt(
        help="Size preset: default (60+30 videos, 8-20 s, 320x240), demo (16+8 videos, 4-6 s, "
        "160x120, 3 classes, for `make demo`) or tiny (tests). Default: default."
    ),
]
NTrainOpt = Annotated[
    int | None, Opt(help="Training videos (about half abnormal). Default: 60, or the preset's.")
]
NTestOpt = Annotated[
    int | None, Opt(help="Test videos (about half abnormal). Default: 30, or the preset's.")
]
MinSecondsOpt = Annotated[
    float | None, Opt(help="Shortest video in seconds. Default: 8.0, or the preset's.")
]
MaxSecondsOpt = Annotated[
    float | None, Opt(help="Longest video in seconds. Default: 20.0, or the preset's.")
]
SizeOpt = Annotated[
    str | None,
    Opt(help="Frame size WIDTHxHEIGHT (even numbers). Default: 320x240, or the preset's."),
]
FpsOpt = Annotated[int | None, Opt(help="Frames per second. Default: 30.")]
CrfOpt = Annotated[int | None, Opt(help="x264 quality (0 lossless .. 51 worst). Default: 23.")]
ClassesOpt = Annotated[
    str | None,
    Opt(
        help="Comma-separated anomaly classes among Fighting, Running, Explosion, "
        "AbandonedObject. Default: all four, or the preset's."
    ),
]


@app.command()
def datasets(debug: DebugOpt = False) -> None:
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


@app.command()
def check(
    dataset: CheckDatasetOpt,
    root: CheckRootOpt,
    probe: ProbeOpt = "annotated",
    train_list: TrainListOpt = None,
    test_list: TestListOpt = None,
    annotations: AnnotationsOpt = None,
    mask_dir: MaskDirOpt = None,
    labels: LabelsOpt = None,
    show_all: ShowAllOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Parse a dataset layout and report its problems as tables; exit 1 when there are errors."""
    from wsvad.data.check import check_frames, load_with_options
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
    _print_overview(index, f"{dataset} at {root}")
    if not problems:
        console.print("no problems found")
        return
    _print_problems(problems, show_all)
    n_errors = sum(p.severity == "error" for p in problems)
    if n_errors:
        err_console.print(
            f"{n_errors} error(s), {len(problems) - n_errors} warning(s): extraction and training "
            "refuse this layout unless told to skip the affected videos"
        )
        raise typer.Exit(EXIT_ERROR)


@app.command()
def synth(
    out: SynthOutOpt = None,
    seed: SeedOpt = None,
    preset: PresetOpt = None,
    n_train: NTrainOpt = None,
    n_test: NTestOpt = None,
    min_seconds: MinSecondsOpt = None,
    max_seconds: MaxSecondsOpt = None,
    size: SizeOpt = None,
    fps: FpsOpt = None,
    crf: CrfOpt = None,
    classes: ClassesOpt = None,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
    debug: DebugOpt = False,
) -> None:
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
        "classes": None
        if classes is None
        else [c.strip() for c in classes.split(",") if c.strip()],
    }
    cfg = load_config(SynthConfig, config, flags, sets)
    with _progress("synth") as on_progress:
        summary = write_dataset(cfg, on_progress)
    console.print(
        f"{summary.out}: {summary.n_videos} videos ({summary.n_generated} written now), "
        f"{summary.n_frames} frames, {summary.seconds:.1f} s; read it with --dataset ucf "
        f"--root {summary.out}",
        markup=False,
        soft_wrap=True,
    )


def _print_overview(index, title: str) -> None:
    """Videos per split and label, then the class names."""
    from rich.table import Table

    counts = Counter((r.split, r.label) for r in index.records)
    overview = Table(title=title)
    for column in ("split", "videos", "normal", "abnormal", "unlabelled"):
        overview.add_column(column, justify="right" if column != "split" else "left")
    for split in ("train", "test"):
        n = sum(v for (s, _), v in counts.items() if s == split)
        by_label = (str(counts[(split, label)]) for label in (0, 1, -1))
        overview.add_row(split, str(n), *by_label)
    console.print(overview)
    console.print(f"classes: {', '.join(index.class_names)}")


def _print_problems(problems, show_all: bool) -> None:
    """A summary table (one row per kind), then the problems themselves (errors first)."""
    from rich.table import Table

    from wsvad.data.check import summarize

    summary = Table(title="problems")
    for column in ("severity", "kind", "count", "example"):
        summary.add_column(column, overflow="fold")
    for severity, kind, count, example in summarize(problems):
        summary.add_row(_severity(severity), kind, str(count), example)
    console.print(summary)
    title = (
        "details"
        if show_all
        else f"details (first {MAX_ROWS_PER_KIND} of each kind; --all for every one)"
    )
    details = Table(title=title)
    for column in ("severity", "kind", "video", "message"):
        details.add_column(column, overflow="fold")
    shown: Counter = Counter()
    for p in sorted(problems, key=lambda p: (p.severity != "error", p.kind)):
        shown[p.kind] += 1
        if show_all or shown[p.kind] <= MAX_ROWS_PER_KIND:
            details.add_row(_severity(p.severity), p.kind, p.video_id or "", p.message)
    console.print(details)


def _severity(severity: str) -> str:
    return "[red]error[/red]" if severity == "error" else "[yellow]warning[/yellow]"


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr fed by a ``(done, total)`` callback; shows nothing until the
    first call."""
    with Reporter(label, "videos") as reporter:
        yield lambda done, total: reporter.update(done, total)
