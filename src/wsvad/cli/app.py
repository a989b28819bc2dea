"""The typer application object and the consoles every command module shares."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from wsvad.cli.options import DebugOpt

app = typer.Typer(
    name="wsvad",
    help="Weakly-supervised video anomaly detection: extract features, train detectors, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Results go to stdout (so they can be piped); progress and diagnostics go to stderr.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def progress_bar(
    label: str, *fields: str, elapsed: bool = False, transient: bool = True, disable: bool = False
):
    """The commands' rich progress bar on stderr: ``label``, bar, done/total, then ``fields`` (rich
    text templates such as ``"{task.fields[rate]}"``), then the ETA (or the elapsed time)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        *(TextColumn(f) for f in fields),
        TimeElapsedColumn() if elapsed else TimeRemainingColumn(),
    ]
    return Progress(*columns, console=err_console, transient=transient, disable=disable)


def _print_version(value: bool) -> None:
    if value:
        from wsvad import __version__

        console.print(f"wsvad {__version__}", markup=False)
        raise typer.Exit()


@app.callback()
def root(
    debug: DebugOpt = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit. Default: off.",
        ),
    ] = False,
) -> None:
    """Weakly-supervised video anomaly detection: extract features, train detectors, evaluate.

    Exit codes: 0 success; 1 an error stopped the command; 2 bad usage; 3 the command finished
    but some inputs failed (the summary names them).
    """
