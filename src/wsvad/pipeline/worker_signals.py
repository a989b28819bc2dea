"""A dask preload for the worker processes of a local cluster: they ignore Ctrl-C.

Ctrl-C in a terminal signals the whole process group, so every worker process would die of its
own KeyboardInterrupt and print a 30-line traceback while the client shuts the cluster down
anyway. Ignoring it leaves the interrupt to the client, which keeps the finished videos and says
in one line how to resume (``wsvad.cli``).
"""

from __future__ import annotations

import signal


def dask_setup(worker) -> None:  # the hook name dask looks for in a preload module
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the process's main thread (a worker inside the client's process)
        pass
