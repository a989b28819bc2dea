"""The ``wsvad`` command: every sub-command lives in a module of this package (listed below);
:func:`run` runs it and turns its outcome into an exit code.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
import typer

from wsvad import locks
from wsvad.cli.app import app, err_console
from wsvad.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE, UsageError, WsvadError

# The command modules register their commands on `app` when imported, in this order, which is the
# order of `wsvad --help` (the pipeline's). A new command module is one more line here.
# isort: off
from wsvad.cli import data  # noqa: F401 - datasets, check, synth
from wsvad.cli import extract  # noqa: F401 - extract
from wsvad.cli import info  # noqa: F401 - info, backbones
from wsvad.cli import train  # noqa: F401 - train
from wsvad.cli import evaluate  # noqa: F401 - evaluate, compare, score
from wsvad.cli import report  # noqa: F401 - report
from wsvad.cli import transfer  # noqa: F401 - import, export, concat
from wsvad.cli import cluster  # noqa: F401 - slurm-script

# isort: on

try:  # typer >= 0.20 vendors click; accept the exceptions of both
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    _TyperClickException = click.ClickException
_CLICK_ERRORS = (click.ClickException, _TyperClickException)
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.exceptions.Abort, typer.Abort)

__all__ = ["app", "main", "run"]

# Exit codes, one convention for every command (`wsvad --help` lists the codes):
# - a command that succeeded returns None (exit 0);
# - a command that finished but must report another outcome ends with `raise typer.Exit(code)`:
#   EXIT_PARTIAL (3) when some inputs failed, EXIT_ERROR (1) when `wsvad check` found errors;
# - an error that stops a command is a WsvadError: run() prints it on one line and returns 1.
# Bad usage is click's (2); Ctrl-C is 130. Commands never *return* a code: typer ignores return
# values when it runs standalone, while typer.Exit means the same under app() and under run().
_EXIT_INTERRUPTED = 130  # typer turns Ctrl-C into Exit(130)
_INTERRUPTED = "interrupted; run the same command again to resume"


def run(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` and return its exit code (used by tests and ``main``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    locks.set_command(args)  # named in the lock files this process writes
    _printable_output()
    debug = _debug_requested(args)
    _configure_logging(debug)
    with _quiet_interrupt(debug):
        return _run(args, debug)


def _run(args: list[str], debug: bool) -> int:
    try:
        # Not standalone, typer returns the code of a typer.Exit, or the command's None.
        code = app(args=args, prog_name="wsvad", standalone_mode=False)
    except _EXITS as exc:  # raised outside a command, where typer does not catch it
        code = exc.exit_code
    except _CLICK_ERRORS as exc:
        exc.show()
        return exc.exit_code
    except _ABORTS:
        err_console.print("aborted")
        return EXIT_ERROR
    except KeyboardInterrupt:
        code = _EXIT_INTERRUPTED
    except UsageError as exc:
        if debug:
            raise
        _print_error(str(exc))
        return EXIT_USAGE
    except WsvadError as exc:
        if debug:
            raise
        _print_error(str(exc))
        return EXIT_ERROR
    except OSError as exc:  # the filesystem refused: name the path and the reason, in words
        if debug:
            raise
        _print_error(_os_error_words(exc))
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence turns crashes into one line
        if debug:
            raise
        _print_error(_unexpected(exc))
        return EXIT_ERROR
    code = EXIT_OK if code is None else code
    if code == _EXIT_INTERRUPTED:
        err_console.print(_INTERRUPTED)
    return code


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run(argv))


@contextmanager
def _quiet_interrupt(debug: bool) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual, but first silences dask's and tornado's loggers:
    while the cluster shuts down they would bury the one line that says how to resume under
    warnings about workers that are still alive (and, with distributed 2026.8, a NameError tornado
    logs from a cancelled callback). Python's own handler is restored afterwards."""

    def interrupted(signum, frame) -> None:
        if not debug:
            for name in ("distributed", "dask", "tornado"):
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        raise KeyboardInterrupt

    installed = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if installed:
        signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def _os_error_words(exc: OSError) -> str:
    """``/runs/x/config.yaml: not a directory (a path above it is a file)``."""
    reason = (exc.strerror or str(exc)).lower()
    if isinstance(exc, NotADirectoryError):
        reason += " (a path above it is a file, not a folder)"
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _debug_requested(args: list[str]) -> bool:
    """``--debug`` anywhere before ``--``: before the sub-command (the group's option) or after it
    (every command declares it too, see ``wsvad.cli.options.DebugOpt``)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--debug" in options


def _configure_logging(debug: bool) -> None:
    # Libraries such as distributed set their own loggers to INFO; the handler's level keeps their
    # chatter out of the terminal unless --debug is given.
    level = logging.DEBUG if debug else logging.WARNING
    handler = logging.StreamHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def _unexpected(exc: Exception) -> str:
    """The one line of an exception no command turned into a WsvadError.

    An OSError naming a file (a name too long, a folder where a file was expected, no permission)
    is the user's path, not a crash: it is said as ``PATH: reason``, like a WsvadError.
    """
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first} (run with --debug for the traceback)"


def _printable_output() -> None:
    """Paths are not always UTF-8 (``caf\\xe9.mp4``): print their odd bytes as ``\\xe9`` instead of
    failing with UnicodeEncodeError halfway through a message or a table."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # not a text stream we may reconfigure
            pass


def _print_error(message: str) -> None:
    """``error: <message>``, one line per line of the message, never rich markup."""
    for line in message.splitlines() or [""]:
        err_console.print(f"error: {line}", markup=False, soft_wrap=True)
