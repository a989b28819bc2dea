"""``wsvad evaluate``, ``wsvad compare`` and ``wsvad score``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wsvad.cli.app import app, console, err_console
from wsvad.cli.options import ConfigOpt, DebugOpt, DecoderOpt, DeviceOpt, SetsOpt
from wsvad.errors import EXIT_OK, WsvadError

Opt = typer.Option
_SHOWN = 50  # problem rows printed; metrics.json lists them all

# Options of evaluate, compare and score only; the shared ones are in wsvad.cli.options.
EvalRunOpt = Annotated[
    Path | None,
    Opt(
        "--run",
        help="Run directory of `wsvad train` (reads run.json, scores.npz or seed-<k>/). "
        "Default: none.",
    ),
]
ScoresOpt = Annotated[
    Path | None,
    Opt(
        help="Standalone: snippet scores of any model, .npz (one array per video id) or .csv "
        "(video,snippet,score). Default: none."
    ),
]
GroundTruthDatasetOpt = Annotated[
    str | None,
    Opt(
        "--dataset",
        help="Dataset adapter for the ground truth (see `wsvad datasets`). Default: the run's.",
    ),
]
GroundTruthRootOpt = Annotated[
    Path | None, Opt("--root", help="Dataset root folder. Default: the run's.")
]
FrameCountStoreOpt = Annotated[
    Path | None,
    Opt(
        "--store",
        help="Feature store giving true frame counts (else probed from the videos). "
        "Default: the run's store.",
    ),
]
EvalOutOpt = Annotated[
    Path | None,
    Opt(
        "--out",
        help="Output folder for metrics.json and plots. Default: RUN/eval (required with "
        "--scores).",
    ),
]
AlignmentOpt = Annotated[
    str | None,
    Opt(
        help="Frame alignment: true-frames (GT of the true frame count), rtfm (scores x16, GT "
        "cut/padded to Tx16) or rtfm-ucf (RTFM's UCF GT on Tx16 frames). Default: true-frames, "
        "or the authors' with --protocol authors."
    ),
]
ProtocolOpt = Annotated[
    str | None,
    Opt(
        "--protocol",
        help="wsvad (alignment as --alignment says) or authors (the alignment and AP of the "
        "benchmark's public code: RTFM for ucf/shanghaitech, XDVioDet for xd). Default: wsvad.",
    ),
]
StrideOpt = Annotated[
    int | None, Opt(help="Frames between snippet starts. Default: from the run/store, else 16.")
]
SnippetLenOpt = Annotated[
    int | None, Opt(help="Frames per snippet. Default: from the run/store, else 16.")
]
FalseAlarmThresholdOpt = Annotated[
    float | None,
    Opt("--threshold", help="Score threshold of the false-alarm rate. Default: 0.5."),
]
NoPlotsOpt = Annotated[
    bool, Opt("--no-plots", help="Skip the ROC/PR/timeline PNGs. Default: plots are written.")
]
NoReportOpt = Annotated[
    bool,
    Opt(
        "--no-report",
        help="Skip report.html, the interactive report. Default: written next to metrics.json.",
    ),
]
CompareReportOpt = Annotated[
    Path | None,
    Opt(
        "--report",
        help="Also write an interactive HTML report of these runs to this file. Default: none.",
    ),
]
RunsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Run directories (or eval folders, or metrics.json files) to put side by side."
    ),
]
VideoArg = Annotated[
    str | None,
    typer.Argument(
        help="Video file, folder of frames, or stream URL, scored offline. Omit with --stream."
    ),
]
ScoreRunOpt = Annotated[
    Path | None,
    Opt(
        "--run",
        help="Run directory of `wsvad train`; its store gives the extraction settings, a "
        "multi-seed run uses seed 0's model. Required.",
    ),
]
IntervalThresholdOpt = Annotated[
    float | None,
    Opt(
        "--threshold",
        help="Frames scored >= threshold are reported as anomalous intervals. Default: 0.5.",
    ),
]
StreamOpt = Annotated[
    str | None,
    Opt(
        "--stream",
        metavar="<source>",
        help="Score SOURCE live, each snippet as soon as its frames arrive (causal rule: "
        "docs/streaming.md): a file, a network stream (udp://, rtsp://, http://) or a capture "
        "device (/dev/video0). Default: off (offline).",
    ),
]
WindowOpt = Annotated[
    int | None,
    Opt(
        help="--stream: snippets of context the detector sees, 0 = all so far. Default: the "
        "detector's (`wsvad detectors`)."
    ),
]
JsonlOpt = Annotated[
    bool,
    Opt(
        "--jsonl",
        help="--stream: one JSON object per line on stdout (start, snippet, interval_start, "
        "interval_end, end); messages for people go to stderr. Default: off.",
    ),
]
HysteresisOpt = Annotated[
    float | None,
    Opt(help="--stream: an interval closes below threshold - hysteresis. Default: 0."),
]
MinDurationOpt = Annotated[
    float | None,
    Opt(help="--stream: seconds an interval must last before it is reported. Default: 0."),
]
BufferOpt = Annotated[
    int | None,
    Opt(
        help="--stream: snippets held while the scorer is busy; a live source drops the oldest "
        "beyond that (counted). Default: 2."
    ),
]
RealtimeOpt = Annotated[
    bool,
    Opt(
        "--realtime",
        help="--stream: play a file at its own frame rate, as a camera would. Default: as fast "
        "as it is scored.",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    Opt(help="--stream: seconds without data that end a network stream or device. Default: 10."),
]
PrecisionOpt = Annotated[
    str | None,
    Opt(help="--stream: fp32 or bf16 backbone. Default: the run's store's precision."),
]
ScoreOutOpt = Annotated[
    Path | None,
    Opt(
        "--out",
        help="Output folder (CSV, timeline PNG, score.json; with --stream snippet_scores.csv and "
        "score.json when it ends). Default: RUN/score/<video stem>/; none with --stream.",
    ),
]
ScoreCropsOpt = Annotated[
    int | None,
    Opt("--crops", help="1, 5 or 10 crops. Default: the crops of the run's store."),
]
FromStoreOpt = Annotated[
    bool,
    Opt(
        "--from-store",
        help="VIDEO is a video id of the run's store: score its stored features with the run's "
        "scoring recipe (for a test video: its scores.npz row). Default: off (decode VIDEO).",
    ),
]


@app.command()
def evaluate(
    run: EvalRunOpt = None,
    scores: ScoresOpt = None,
    dataset: GroundTruthDatasetOpt = None,
    root: GroundTruthRootOpt = None,
    store: FrameCountStoreOpt = None,
    out: EvalOutOpt = None,
    protocol: ProtocolOpt = None,
    alignment: AlignmentOpt = None,
    stride: StrideOpt = None,
    snippet_len: SnippetLenOpt = None,
    threshold: FalseAlarmThresholdOpt = None,
    no_plots: NoPlotsOpt = False,
    no_report: NoReportOpt = False,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
    debug: DebugOpt = False,
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
        "protocol": protocol,
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
            f"{cfg.run or cfg.scores}: no scored video matches a test video of the dataset "
            f"({len(outcome.problems)} problems listed above)"
        )
    _print_report(outcome.report, outcome.out_dir)
    if cfg.report:
        console.print(f"report: {outcome.out_dir / 'report.html'}", markup=False, soft_wrap=True)
    if outcome.problems:
        err_console.print(
            f"evaluated {outcome.n_matched} of {outcome.n_test_videos} test videos: "
            "NOT the full-protocol figures (exit 3)",
            soft_wrap=True,
        )
    if outcome.exit_code != EXIT_OK:
        raise typer.Exit(outcome.exit_code)


@app.command()
def compare(runs: RunsArg, report_file: CompareReportOpt = None, debug: DebugOpt = False) -> None:
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
            "warning: the runs were evaluated under different protocols; their figures are not "
            "comparable:"
        )
        for path, report in zip(runs, reports, strict=True):
            err_console.print(f"  {path}: {report['protocol'].get('description')}", markup=False)
    if report_file is not None:
        from wsvad.evaluate.html_report import write_html_report

        path = write_html_report(runs, report_file)
        console.print(f"report: {path}", markup=False, soft_wrap=True)


@app.command()
def score(
    video: VideoArg = None,
    run: ScoreRunOpt = None,
    threshold: IntervalThresholdOpt = None,
    stream: StreamOpt = None,
    window: WindowOpt = None,
    jsonl: JsonlOpt = False,
    hysteresis: HysteresisOpt = None,
    min_duration: MinDurationOpt = None,
    buffer: BufferOpt = None,
    realtime: RealtimeOpt = False,
    timeout: TimeoutOpt = None,
    precision: PrecisionOpt = None,
    out: ScoreOutOpt = None,
    device: DeviceOpt = None,
    decoder: DecoderOpt = None,
    crops: ScoreCropsOpt = None,
    from_store: FromStoreOpt = False,
    config: ConfigOpt = None,
    sets: SetsOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Score a new video end to end (decode, crops, backbone, the run's detector), or a live
    source snippet by snippet with --stream."""
    from wsvad.config import load_config
    from wsvad.evaluate.config import ScoreConfig

    flags = {
        "video": video,
        "run": run,
        "threshold": threshold,
        "stream": stream,
        "window": window,
        "hysteresis": hysteresis,
        "min_duration": min_duration,
        "buffer": buffer,
        "realtime": realtime or None,
        "timeout": timeout,
        "precision": precision,
        "out": out,
        "device": device,
        "decoder": decoder,
        "crops": crops,
        "from_store": from_store or None,
    }
    cfg = load_config(ScoreConfig, config, flags=flags, sets=sets)
    if cfg.stream is not None:
        from wsvad.cli.score_stream import score_stream

        score_stream(cfg, jsonl)
        return
    _score_offline(cfg)


def _score_offline(cfg) -> None:
    from wsvad.evaluate.score_video import describe_interval, score_video

    result = (
        _score_stored(cfg)
        if cfg.from_store
        else score_video(
            cfg.video,
            cfg.run,
            cfg.out,
            cfg.threshold,
            device=cfg.device,
            decoder=cfg.decoder,
            crops=cfg.crops,
        )
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


def _score_stored(cfg):
    """``score --from-store``: the stored features of a video of the run's store."""
    from wsvad.evaluate.score_stored import score_stored_video

    return score_stored_video(cfg.video, cfg.run, cfg.out, cfg.threshold, cfg.device)


def _print_problems(problems) -> None:
    table = Table(
        "video", "problem", "detail", title=f"{len(problems)} videos not evaluated as given"
    )
    for p in problems[:_SHOWN]:
        table.add_row(p.video_id, p.kind, p.detail)
    err_console.print(table)
    if len(problems) > _SHOWN:
        err_console.print(
            f"... and {len(problems) - _SHOWN} more (all listed in metrics.json under "
            "coverage.problems)"
        )


def _print_report(report: dict, out_dir: Path) -> None:
    from wsvad.evaluate.report import HEADLINE, headline_rows

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
    protocol = report["protocol"]
    note = protocol.get("estimate_note")
    described = protocol["description"].removesuffix(f"; {note}")
    console.print(f"protocol: {described}", markup=False, soft_wrap=True)
    if protocol.get("name") == "authors":
        key = protocol["paper_figure"]
        console.print(
            f"the papers' figure: {dict(HEADLINE).get(key, key)} ({key} in metrics.json)",
            markup=False,
        )
    if note:
        console.print(note, markup=False, soft_wrap=True)
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
