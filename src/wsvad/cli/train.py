"""``wsvad train``: train a detector on a feature store and write a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console, err_console, progress_bar
from wsvad.errors import EXIT_OK, EXIT_PARTIAL, WsvadError


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise WsvadError(
            f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2"
        ) from None


@app.command()
def train(
    store: Annotated[
        Path | None, typer.Option(help="Feature store to train on (required here or in --config).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory to write (required here or in --config).")
    ] = None,
    detector: Annotated[
        str | None, typer.Option(help="Detector name, see wsvad.detectors (default: mil).")
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(help="Take labels from this dataset adapter (default: the store's attrs)."),
    ] = None,
    root: Annotated[
        Path | None, typer.Option(help="Dataset root for --dataset (default: none).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="YAML train config; options override it (default: none)."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: 0).")] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Several seeds, e.g. 0,1,2: one run each, mean ± std reported (default: off)."
        ),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(help="Optimizer steps (default: the detector's paper setting, else 1000)."),
    ] = None,
    selection: Annotated[
        str | None,
        typer.Option(
            help="Model selection: last, val or test-best (optimistic; recorded and flagged) (default: last)."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="torch device (default: cpu).")] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace an existing run in --out (default: resume it)."),
    ] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config key, key.path=value (default: none)."),
    ] = None,
) -> None:
    """Train a detector with video-level labels; writes config, weights, log and test scores to --out."""
    from wsvad.config import load_config
    from wsvad.train import TrainConfig, run_train

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
    }
    cfg = load_config(TrainConfig, config, flags, sets)
    with progress_bar("{task.description}", "{task.fields[info]}") as bar:
        task = bar.add_task("train", total=None, info="")

        def progress(step: int, total: int, logged: dict[str, float]) -> None:
            info = f"loss {logged['loss']:.4f}  {logged['it_s']:.0f} it/s" if logged else ""
            bar.update(task, completed=step, total=total, info=info)

        def cache_progress(done: int, total: int) -> None:
            bar.update(task, description="bag cache", completed=done, total=total, info="")
            if done == total:
                bar.update(task, description="train", completed=0, total=None)

        result = run_train(
            cfg, progress=progress, overwrite=overwrite, cache_progress=cache_progress
        )
    report = result.report
    if report is not None and not report.clean:
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
                table.add_row(
                    kind, str(len(ids)), ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
                )
        err_console.print(table)
    flag = f"  [{result.warning}]" if result.warning else ""
    for member in result.members or [result]:
        auc = "n/a (no frame labels)" if member.frame_auc is None else f"{member.frame_auc:.4f}"
        own = f"  [{member.warning}]" if member.warning else ""
        line = f"{member.run_dir}: seed {member.seed}, {member.steps} steps, quick frame AUC (test) {auc}{own}"
        console.print(line, markup=False, soft_wrap=True)
    if result.members:
        import statistics

        got = [m.frame_auc for m in result.members if m.frame_auc is not None]
        if got:
            std = statistics.stdev(got) if len(got) > 1 else 0.0
            line = f"{result.run_dir}: frame AUC over {len(got)} seeds {statistics.fmean(got):.4f} ± {std:.4f}{flag}"
            console.print(line, markup=False, soft_wrap=True)
    missing = report is not None and (report.not_in_store or report.unlabelled)
    raise typer.Exit(EXIT_PARTIAL if missing else EXIT_OK)
