"""``wsvad train``: train a detector on a feature store and write a run directory."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console, err_console
from wsvad.cli.options import (
    ConfigOpt,
    DebugOpt,
    DeviceOpt,
    ProgressEveryOpt,
    SeedOpt,
    SetsOpt,
    StoreOpt,
    dataset_names,
    detector_names,
    one_of,
)
from wsvad.cli.progress import DEFAULT_EVERY_S, Reporter
from wsvad.errors import EXIT_PARTIAL, WsvadError

Opt = typer.Option


# Options of train only; the shared ones are in wsvad.cli.options.
RunOutOpt = Annotated[
    Path | None, Opt("--out", help="Run directory to write. Required (here or in --config).")
]
DetectorOpt = Annotated[
    str | None,
    Opt(help="Detector (see `wsvad detectors`). Default: mil.", callback=one_of(detector_names)),
]
LabelsDatasetOpt = Annotated[
    str | None,
    Opt(
        "--dataset",
        help="Take the labels from this dataset adapter (see `wsvad datasets`). "
        "Default: the labels in the store's attrs.",
        callback=one_of(dataset_names),
    ),
]
LabelsRootOpt = Annotated[
    Path | None, Opt("--root", help="Dataset root folder for --dataset. Default: none.")
]
SeedsOpt = Annotated[
    str | None,
    Opt(help="Several seeds, e.g. 0,1,2: one run each, mean ± std reported. Default: off."),
]
IterationsOpt = Annotated[
    int | None,
    Opt(help="Optimizer steps. Default: the detector's paper setting, else 1000."),
]
SelectionOpt = Annotated[
    str | None,
    Opt(
        help="Model selection: last, val or test-best (optimistic; recorded and flagged). "
        "Default: last."
    ),
]
TrainPrecisionOpt = Annotated[
    str | None,
    Opt(
        "--precision",
        help="Training compute precision: fp32, or bf16 autocast (products in bf16; cell states, "
        "losses and the optimizer in float32): about 2x faster on a CPU with AVX512-BF16 or AMX "
        "(docs/performance.md). Default: fp32.",
        callback=one_of(lambda: ("fp32", "bf16")),
    ),
]
OverwriteOpt = Annotated[
    bool, Opt("--overwrite", help="Replace an existing run in --out. Default: resume it.")
]


@app.command()
def train(
    store: StoreOpt = None,
    out: RunOutOpt = None,
    detector: DetectorOpt = None,
    dataset: LabelsDatasetOpt = None,
    root: LabelsRootOpt = None,
    config: ConfigOpt = None,
    seed: SeedOpt = None,
    seeds: SeedsOpt = None,
    iterations: IterationsOpt = None,
    selection: SelectionOpt = None,
    device: DeviceOpt = None,
    precision: TrainPrecisionOpt = None,
    overwrite: OverwriteOpt = False,
    sets: SetsOpt = None,
    progress_every: ProgressEveryOpt = DEFAULT_EVERY_S,
    debug: DebugOpt = False,
) -> None:
    """Train a detector with video-level labels; writes config, weights, log and test scores to
    --out."""
    from wsvad.config import load_config
    from wsvad.train import TrainConfig

    flags = {
        "store": store,
        "out": out,
        "detector.name": detector,
        "dataset": dataset,
        "root": root,
        "seed": seed,
        "seeds": _parse_seeds(seeds),
        "iterations": iterations,
        "selection.mode": selection,
        "device": device,
        "precision": precision,
    }
    cfg = load_config(TrainConfig, config, flags, sets)
    with _no_half_made_run(cfg.out):
        result = _train_with_progress(cfg, overwrite, progress_every)
    report = result.report
    if report is not None and not report.clean:
        _print_unmatched(report)
    _print_figures(result)
    if report is not None and (report.not_in_store or report.unlabelled):
        raise typer.Exit(EXIT_PARTIAL)


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise WsvadError(
            f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2"
        ) from None


@contextmanager
def _no_half_made_run(out: Path | None) -> Iterator[None]:
    """A new run folder that a failed train leaves without a checkpoint is removed, so that it
    never looks like a run. An interrupted run (Ctrl-C) keeps its checkpoint and resumes."""
    fresh = out is not None and not (out.exists() and any(out.iterdir()))
    try:
        yield
    except Exception:
        if fresh and out.is_dir() and not any(out.rglob("checkpoints/last.json")):
            shutil.rmtree(out, ignore_errors=True)
        raise


def _train_with_progress(cfg, overwrite: bool, every: float = DEFAULT_EVERY_S):
    """``run_train`` under one progress reporter: the bag cache first, then the optimizer steps
    (of each seed); the first report says the precision (once the inputs are known good, so an
    error stays the only line), and a resumed run says at which step it resumed."""
    from wsvad.extract.precision import precision_line
    from wsvad.train import run_train

    last = [0]  # the step of the previous call: a smaller one starts a new seed
    said = []  # the precision line, once printed

    with Reporter("train", "steps", every) as reporter:

        def progress(step: int, total: int, logged: dict[str, float]) -> None:
            if not said:
                said.append(precision_line(cfg.device, cfg.precision))
                err_console.print(f"{cfg.out}: {said[0]}", markup=False, soft_wrap=True)
            if step == 0 and "epochs" in logged:
                err_console.print(
                    f"{cfg.out}: {total} steps = {logged['epochs']:.1f} epochs of its training "
                    "videos (--iterations N or --set epochs=N to change)",
                    markup=False,
                    soft_wrap=True,
                )
                return
            if step <= last[0] or last[0] == 0:
                if step > 1:  # the first step of this session is step + 1 of the checkpoint
                    err_console.print(f"{cfg.out}: resumed at step {step - 1}", markup=False)
                reporter.update(step - 1, total, phase="train", unit="steps")
            last[0] = step
            info = f"loss {logged['loss']:.4f}" if "loss" in logged else ""
            reporter.update(step, total, info, phase="train")

        def cache_progress(done: int, total: int) -> None:
            reporter.update(done, total, phase="bag cache", unit="videos")

        return run_train(cfg, progress=progress, overwrite=overwrite, cache_progress=cache_progress)


def _print_unmatched(report) -> None:
    """The store's and the dataset's video ids that did not match, as a table on stderr."""
    from rich.table import Table

    table = Table(title=f"unmatched video ids ({report.source})")
    for name in ("kind", "count", "examples"):
        table.add_column(name)
    for kind, ids in (
        ("in store, not in dataset (ignored)", report.not_in_dataset),
        ("in dataset, not in store (missing)", report.not_in_store),
        ("in store, no split/label attrs (ignored)", report.unlabelled),
    ):
        if ids:
            examples = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
            table.add_row(kind, str(len(ids)), examples)
    err_console.print(table)


def _print_figures(result) -> None:
    """One line per seed (steps, quick frame AUC, warning), then the mean ± std over seeds."""
    from wsvad.runs import mean_std

    for member in result.members or [result]:
        auc = "n/a (no frame labels)" if member.frame_auc is None else f"{member.frame_auc:.4f}"
        own = f"  [{member.warning}]" if member.warning else ""
        console.print(
            f"{member.run_dir}: seed {member.seed}, {member.steps} steps, "
            f"quick frame AUC (test) {auc}{own}",
            markup=False,
            soft_wrap=True,
        )
    summary = mean_std(m.frame_auc for m in result.members)
    if summary["n"]:
        flag = f"  [{result.warning}]" if result.warning else ""
        console.print(
            f"{result.run_dir}: frame AUC over {summary['n']} seeds "
            f"{summary['mean']:.4f} ± {summary['std']:.4f}{flag}",
            markup=False,
            soft_wrap=True,
        )


FormatOpt = Annotated[
    str, Opt("--format", help="Format of --weights: rtfm (the public RTFM code). Required.")
]
WeightsOpt = Annotated[
    Path,
    Opt("--weights", help="The released checkpoint (rtfm: a torch.save'd state dict). Required."),
]
RequiredStoreOpt = Annotated[
    Path,
    Opt("--store", help="Feature store whose test videos are scored. Required."),
]
RequiredOutOpt = Annotated[Path, Opt("--out", help="Run directory to write. Required.")]


@app.command("import-model")
def import_model(
    fmt: FormatOpt,
    weights: WeightsOpt,
    store: RequiredStoreOpt,
    out: RequiredOutOpt,
    dataset: LabelsDatasetOpt = None,
    root: LabelsRootOpt = None,
    overwrite: OverwriteOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Turn authors' released weights into a run directory (model, test scores, run.json) that
    `wsvad evaluate --run` and `wsvad score --run` use like a trained run."""
    from wsvad.train.import_model import import_model as run_import

    if (dataset is None) != (root is None):
        raise WsvadError("--dataset and --root go together (labels from the dataset adapter)")
    result = run_import(fmt, weights, store, out, dataset, root, overwrite)
    report = result.report
    if report is not None and not report.clean:
        _print_unmatched(report)
    auc = "n/a (no frame labels)" if result.frame_auc is None else f"{result.frame_auc:.4f}"
    warning = f"  [{result.collapse}]" if result.collapse else ""
    console.print(
        f"{result.run_dir}: imported {fmt} weights {weights}, "
        f"quick frame AUC (test) {auc}{warning}",
        markup=False,
        soft_wrap=True,
    )
