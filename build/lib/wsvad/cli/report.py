"""``wsvad report``: one self-contained interactive HTML file for one or more evaluated runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wsvad.cli.app import app, console
from wsvad.cli.options import DebugOpt


@app.command()
def report(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Evaluated runs: run directories, eval folders or metrics.json files."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="The HTML file to write. Default: report.html in the current folder.",
            show_default=False,
        ),
    ] = Path("report.html"),
    title: Annotated[
        str | None,
        typer.Option(help="Title of the page. Default: 'wsvad report: ' and the run names."),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """ROC/PR curves, figures, provenance and per-video score timelines, in one offline page."""
    from wsvad.evaluate.html_report import write_html_report

    path = write_html_report(runs, out, title)
    size = path.stat().st_size / 1e6
    console.print(
        f"wrote {path} ({len(runs)} run{'s' * (len(runs) > 1)}, {size:.1f} MB); "
        "open it in a browser",
        markup=False,
        soft_wrap=True,
    )
