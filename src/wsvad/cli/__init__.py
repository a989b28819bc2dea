"""The ``wsvad`` command: every sub-command lives in a module of this package.

Command modules register themselves on :data:`wsvad.cli.app.app` when imported; they are
discovered here so that adding a command means adding one module.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import click
import typer

from wsvad.cli.app import app, err_console
from wsvad.errors import EXIT_ERROR, EXIT_OK, WsvadError

try:  # typer >= 0.20 vendors click; accept the exceptions of both
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    _TyperClickException = click.ClickException
_CLICK_ERRORS = (click.ClickException, _TyperClickException)
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.exceptions.Abort, typer.Abort)

__all__ = ["app", "main", "run"]

# Pipeline order for `wsvad --help`; any other command module is appended after these.
_ORDER = ("data", "extract", "train", "evaluate", "transfer", "cluster")
_found = {m.name for m in pkgutil.iter_modules(__path__)} - {"app"}
for _name in [n for n in _ORDER if n in _found] + sorted(_found - set(_ORDER)):
    importlib.import_module(f"{__name__}.{_name}")


_INTERRUPTED = "interrupted: finished work is kept; run the same command again to resume"


def run(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` and return its exit code (used by tests and ``main``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    # Libraries such as distributed set their own loggers to INFO; the handler's level keeps their
    # chatter out of the terminal unless --debug is given.
    handler = logging.StreamHandler()
    handler.setLevel(logging.DEBUG if debug else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, handlers=[handler], force=True
    )
    try:
        result = app(args=args, prog_name="wsvad", standalone_mode=False)
    except _EXITS as exc:
        if exc.exit_code == 130:  # typer turns Ctrl-C into Exit(130)
            err_console.print(_INTERRUPTED)
        return exc.exit_code
    except _CLICK_ERRORS as exc:
        exc.show()
        return exc.exit_code
    except _ABORTS:
        err_console.print("aborted")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err_console.print(_INTERRUPTED)
        return 130
    except WsvadError as exc:
        if debug:
            raise
        for line in str(exc).splitlines() or [""]:
            err_console.print(f"error: {line}", markup=False, soft_wrap=True)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence turns crashes into one line
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        err_console.print(
            f"error: {type(exc).__name__}: {first} (run with --debug for the traceback)",
            markup=False,
            soft_wrap=True,
        )
        return EXIT_ERROR
    return result if isinstance(result, int) else EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run(argv))
