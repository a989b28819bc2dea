"""``wsvad evaluate``, ``wsvad compare`` and ``wsvad score``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wsvad.cli.app import app, console, err_console
from wsvad.errors import WsvadError

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config (configs/evaluate/); named options override it. Default: none.",
    ),
]
SetsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override any config key, key.path=value (repeatable). Default: none."
    ),
]


@app.command()
def evaluate(
    run: Annotated[
        Path | None,
        typer.Option(
            help="Run directory of `wsvad train` (reads run.json, scores.npz or seed-<k>/). Default: none."
        ),
    ] = None,
    scores: Annotated[
        Path | None,
        typer.Option(
            help="Standalone: snippet scores of any model, .npz (one array per video id) or .csv (video,snippet,score). Default: none."
        ),
    ] = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Dataset adapter for the ground truth (ucf, shanghaitech, xd, ...). Default: the run's."
        ),
    ] = None,
    root: Annotated[
        Path | None, typer.Option(help="Dataset root folder. Default: the run's.")
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            help="Feature store giving true frame counts (else probed from the videos). Default: the run's store."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder for metrics.json and plots. Default: RUN/eval (required with --scores)."
        ),
    ] = None,
    alignment: Annotated[
        str | None,
        typer.Option(
            help="Frame alignment: true-frames (GT of the true frame count) or rtfm (scores x16, GT cut/padded to Tx16). Default: true-frames."
        ),
    ] = None,
    stride: Annotated[
        int | None,
        typer.Option(help="Frames between snippet starts. Default: from the run/store, else 16."),
    ] = None,
    snippet_len: Annotated[
        int | None, typer.Option(help="Frames per snippet. Default: from the run/store, else 16.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Score threshold of the false-alarm rate. Default: 0.5.")
    ] = None,
    no_plots: Annotated[
        bool,
        typer.Option(
            "--no-plots", help="Skip the ROC/PR/timeline PNGs. Default: plots are written."
        ),
    ] = False,
    no_report: Annotated[
        bool,
        typer.Option(
            "--no-report",
            help="Skip report.html, the interactive report. Default: written next to metrics.json.",
        ),
    ] = False,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
) -> None:
    """Frame-level AUC, AP (both definitions), FAR, per-class AUC; metrics.json and plots."""
    from wsvad.config import load_config
    from wsvad.evaluate.config import EvaluateConfig
    from wsvad.evaluate.run import run_evaluate

    flags = {
        "run": run,
        "scores": scores,
        "dataset": dataset,
        "root": root,
        "store": store,
        "out": out,
        "alignment": alignment,
        "stride": stride,
        "snippet_len": snippet_len,
        "threshold": threshold,
        "plots": False if no_plots else None,
        "report": False if no_report else None,
    }
    cfg = load_config(EvaluateConfig, config, flags=flags, sets=sets)
    outcome = run_evaluate(cfg)
    if outcome.problems:
        _print_problems(outcome.problems)
    if outcome.report is None:
        raise WsvadError(
            f"{cfg.run or cfg.scores}: no scored video matches a test video of the dataset ({len(outcome.problems)} problems listed above)"
        )
    _print_report(outcome.report, outcome.out_dir)
    if cfg.report:
        console.print(f"report: {outcome.out_dir / 'report.html'}", markup=False, soft_wrap=True)
    if outcome.problems:
        err_console.print(
            f"evaluated {outcome.n_matched} of {outcome.n_test_videos} test videos; the figures are NOT the full-protocol figures (exit 3)"
        )
    raise typer.Exit(outcome.exit_code)


@app.command()
def compare(
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Run directories (or eval folders, or metrics.json files) to put side by side."
        ),
    ],
    report_file: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write an interactive HTML report of these runs to this file. Default: none.",
        ),
    ] = None,
) -> None:
    """Print the metrics of several evaluated runs side by side."""
    from wsvad.evaluate.report import compare_table, read_report

    reports = [read_report(p) for p in runs]
    header, rows = compare_table(reports, [p.name or str(p) for p in runs])
    table = Table(*header, title="wsvad compare (figures in %)")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    protocols = {r["protocol"].get("description") for r in reports}
    if len(protocols) > 1:
        err_console.print(
            "warning: the runs were evaluated under different protocols; their figures are not comparable:"
        )
        for path, report in zip(runs, reports):
            err_console.print(f"  {path}: {report['protocol'].get('description')}", markup=False)
    if report_file is not None:
        from wsvad.evaluate.html_report import write_html_report

        path = write_html_report(runs, report_file)
        console.print(f"report: {path}", markup=False, soft_wrap=True)


@app.command()
def score(
    video: Annotated[
        str, typer.Argument(help="Video file, folder of frames, or stream URL (rtsp://, http://).")
    ],
    run: Annotated[
        Path | None,
        typer.Option(
            help="Run directory of `wsvad train`; its store gives the extraction settings, a multi-seed run uses seed 0's model. Required."
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Frames scored >= threshold are reported as anomalous intervals. Default: 0.5."
        ),
    ] = None,
    stream: Annotated[
        bool,
        typer.Option(
            "--stream",
            help="Print each snippet's score as soon as it is decoded, with its latency. Default: off (offline).",
        ),
    ] = False,
    window: Annotated[
        int | None,
        typer.Option(help="--stream: snippets of context the detector sees. Default: 32."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output folder (CSV, timeline PNG, score.json). Default: RUN/score/<video stem>/."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N. Default: cpu.")] = None,
    decoder: Annotated[
        str | None,
        typer.Option(help="auto (decord, PyAV if decord fails), decord or av. Default: auto."),
    ] = None,
    crops: Annotated[
        int | None, typer.Option(help="1, 5 or 10 crops. Default: the crops of the run's store.")
    ] = None,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
) -> None:
    """Score a new video end to end: decode, crops, backbone, the run's detector."""
    from wsvad.config import load_config
    from wsvad.evaluate.config import ScoreConfig
    from wsvad.evaluate.score_video import describe_interval, score_video

    flags = {
        "video": video,
        "run": run,
        "threshold": threshold,
        "stream": stream or None,
        "window": window,
        "out": out,
        "device": device,
        "decoder": decoder,
        "crops": crops,
    }
    cfg = load_config(ScoreConfig, config, flags=flags, sets=sets)

    def show(s) -> None:
        console.print(
            f"snippet {s.index:5d}  frames {s.start}-{s.end - 1}  score {s.score:.3f}  latency {1000 * s.latency:.0f} ms",
            markup=False,
        )

    result = score_video(
        cfg.video,
        cfg.run,
        cfg.out,
        cfg.threshold,
        cfg.stream,
        cfg.window,
        cfg.device,
        cfg.decoder,
        cfg.crops,
        on_snippet=show if cfg.stream else None,
    )
    n = len(result.intervals)
    console.print(
        f"{n} anomalous interval{'s' if n != 1 else ''} (score >= {cfg.threshold:g}):"
        if n
        else f"no frame scored >= {cfg.threshold:g}"
    )
    for start, end in result.intervals:
        console.print(f"  {describe_interval(start, end, result.fps)}", markup=False)
    for path in result.files.values():
        console.print(f"wrote {path}", markup=False)


def _print_problems(problems) -> None:
    table = Table(
        "video", "problem", "detail", title=f"{len(problems)} videos not evaluated as given"
    )
    for p in problems[:50]:
        table.add_row(p.video_id, p.kind, p.detail)
    err_console.print(table)
    if len(problems) > 50:
        err_console.print(
            f"... and {len(problems) - 50} more (all listed in metrics.json under coverage.problems)"
        )


def _print_report(report: dict, out_dir: Path) -> None:
    from wsvad.evaluate.report import headline_rows

    seeds = report.get("seed")
    title = (
        f"seeds {seeds} (mean ± std)"
        if isinstance(seeds, list) and len(seeds) > 1
        else "frame-level metrics (%)"
    )
    table = Table("metric", "value", title=title)
    for name, value in headline_rows(report):
        table.add_row(name, value)
    console.print(table)
    console.print(f"protocol: {report['protocol']['description']}", markup=False, soft_wrap=True)
    selection = report.get("model_selection")
    flag = "  <-- SELECTED ON THE TEST SET" if report.get("selected_on_test") else ""
    console.print(f"model selection: {selection}{flag}", markup=False)
    collapse = (report.get("source") or {}).get("training_collapse")
    if collapse:
        err_console.print(f"warning: {collapse}", markup=False, soft_wrap=True)
    console.print(f"written: {out_dir / 'metrics.json'}", markup=False)
    plots = report.get("plots", [])
    for plot in plots[:2]:
        console.print(f"plot: {out_dir / plot}", markup=False)
    timelines = sorted({str((out_dir / p).parent) for p in plots[2:]})
    for folder in timelines:
        count = sum(1 for p in plots[2:] if str((out_dir / p).parent) == folder)
        console.print(
            f"plots: {folder}/ ({count} score timelines, ground truth shaded)",
            markup=False,
            soft_wrap=True,
        )
