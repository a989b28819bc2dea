"""User-facing errors and the exit codes documented in the README.

Usage errors (unknown option, missing argument) exit 2: click sets that code itself.
"""

EXIT_OK = 0
EXIT_ERROR = 1  # a problem that stopped the command
EXIT_PARTIAL = 3  # the command finished, but some inputs failed; the summary names them


class WsvadError(Exception):
    """Bad input or an unusable environment: the CLI prints the message on one line and exits 1."""
