"""One writer per store and per run directory: a lock file naming the process that holds it.

``wsvad extract``/``import`` lock the store (``STORE/.lock``, one per job-array shard),
``wsvad train`` locks its run directory (``RUN/.lock``), and readers that must not see a run being
written (``wsvad evaluate --run``) check it with :func:`refuse_if_held`. A second process is refused
with one line naming the holder: pid, host and command. A lock left by a process that died on this
host is taken over; one from another host is not (its pid cannot be checked from here).

The lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local filesystems and NFSv3+), so
no lock library is needed; its JSON is written into the created file. A feature store holds only
zarr nodes (wsvad.pipeline.bookkeeping), so its lock is a zarr group (``group=True``): the folder
``STORE/.lock/`` whose ``zarr.json``, created the same way, carries the holder as its attrs. A
lock file of an older store is still honoured (and a dead holder's taken over). Imports only
wsvad.errors: every package may use it (docs/architecture.md, foundation).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wsvad.errors import WsvadError

LOCK = ".lock"
_COMMAND_CHARS = 200  # the command line in a lock is for people: long argv are cut

# Set by the CLI (wsvad.cli.run) to the command being run; else the interpreter's argv.
_command: str | None = None


class LockHeld(WsvadError):
    """Another live process holds the lock; the message is one line naming it (exit 1)."""


def command_text(argv: list[str]) -> str:
    """``argv`` as one printable line of at most 200 characters (newlines and undecodable bytes
    escaped), as a lock file records it."""
    text = shlex.join(str(arg) for arg in argv)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= _COMMAND_CHARS else text[: _COMMAND_CHARS - 3] + "..."


def set_command(argv: list[str]) -> None:
    """Record the command this process runs (``wsvad train --out x``), shown to other processes."""
    global _command
    _command = command_text(["wsvad", *argv])


def _this_process() -> dict[str, Any]:
    command = _command if _command is not None else command_text(sys.argv)
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": time.time(),
        "command": command,
    }


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


GROUP_META = "zarr.json"  # the document of a lock kept as a zarr group


def _read_holder(lock: Path) -> dict[str, Any]:
    path = lock / GROUP_META if lock.is_dir() else lock
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # being written this instant, or garbage: an unnamed holder
        return {}
    if lock.is_dir():  # a group lock: the holder is the group's attrs
        holder = holder.get("attributes") if isinstance(holder, dict) else None
    return holder if isinstance(holder, dict) else {}


def holder(lock: Path) -> dict[str, Any]:
    """What ``lock`` records of its holder (``{}`` when nothing is readable)."""
    return _read_holder(lock)


def live_holder(lock: Path) -> dict[str, Any] | None:
    """The holder of ``lock`` unless there is none or it is a dead process of this host."""
    if not lock.exists() or (lock.is_dir() and not (lock / GROUP_META).exists()):
        return None  # a group lock's folder alone holds nothing: its zarr.json is the lock
    holder = _read_holder(lock)
    if holder.get("host") == socket.gethostname() and not pid_alive(_pid(holder)):
        return None
    return holder


def _pid(holder: dict[str, Any]) -> int:
    try:
        return int(holder.get("pid", -1))
    except (TypeError, ValueError):
        return -1


def describe(holder: dict[str, Any]) -> str:
    """``pid 123 on host: wsvad train --out run`` (the parts the holder recorded)."""
    text = f"pid {holder.get('pid')} on {holder.get('host')}"
    return f"{text}: {holder['command']}" if holder.get("command") else text


def held_message(owner: Path, holder: dict[str, Any], doing: str, lock: Path) -> str:
    return (
        f"{owner}: another wsvad process ({describe(holder)}) is {doing}; wait for it to finish, "
        f"or delete {lock} if that process is gone"
    )


def _remove(lock: Path) -> None:
    if lock.is_dir():
        shutil.rmtree(lock, ignore_errors=True)
    else:
        lock.unlink(missing_ok=True)


def _create(lock: Path, me: dict[str, Any], group: bool) -> bool:
    """Create the lock (``False``: it exists); ``group``: as the zarr group ``lock/``."""
    target = lock / GROUP_META if group else lock
    try:
        if group:
            lock.mkdir(exist_ok=True)  # FileExistsError when an older lock file is there
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    document = {"zarr_format": 3, "node_type": "group", "attributes": me} if group else me
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh)
    return True


def acquire(lock: Path, owner: Path, doing: str, group: bool = False) -> None:
    """Create ``lock`` for this process, taking over a dead holder's (``group``: as a zarr group,
    for feature stores).

    Raises:
        LockHeld: a live process holds it (one line naming it; ``doing`` as in "is writing this
            store").
        OSError: the directory refuses the file (read-only, full): the caller names its resource.
    """
    me = _this_process()
    for _ in range(3):  # a dead holder's lock is removed and the create retried
        try:
            if _create(lock, me, group):
                return
        except FileNotFoundError:  # the group's folder was removed meanwhile (a release): retry
            continue
        holder = live_holder(lock)
        if holder is not None:
            raise LockHeld(held_message(owner, holder, doing, lock))
        _remove(lock)
    raise LockHeld(held_message(owner, _read_holder(lock), doing, lock))


def release(lock: Path) -> None:
    """Delete ``lock`` if this process holds it (never another process's)."""
    holder = _read_holder(lock)
    if _pid(holder) == os.getpid() and holder.get("host") == socket.gethostname():
        _remove(lock)


def refuse_if_held(lock: Path, owner: Path, doing: str) -> None:
    """For readers: raise :class:`LockHeld` while a live process holds ``lock``."""
    holder = live_holder(lock)
    if holder is not None and not (
        _pid(holder) == os.getpid() and holder.get("host") == socket.gethostname()
    ):
        raise LockHeld(held_message(owner, holder, doing, lock))


@contextmanager
def holding(directory: Path, doing: str) -> Iterator[Path]:
    """Create ``directory`` and hold ``directory/.lock`` while the block runs (a run directory)."""
    lock = Path(directory) / LOCK
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        acquire(lock, lock.parent, doing)
    except OSError as exc:
        where = exc.filename or directory
        raise WsvadError(f"{where}: cannot write here ({exc.strerror or exc})") from exc
    try:
        yield lock
    finally:
        release(lock)
