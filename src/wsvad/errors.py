"""User-facing errors and the exit codes documented in the README.

Usage errors (unknown option, missing argument) exit 2: click sets that code itself.
"""

EXIT_OK = 0
EXIT_ERROR = 1  # a problem that stopped the command
EXIT_PARTIAL = 3  # the command finished, but some inputs failed; the summary names them


class WsvadError(Exception):
    """Bad input or an unusable environment: the CLI prints the message on one line and exits 1."""


EXIT_USAGE = 2  # bad usage: unknown option, invalid or missing value


class UsageError(WsvadError):
    """Bad usage found after parsing (a required setting given neither as an option nor in
    --config): the CLI prints the message on one line and exits 2."""
