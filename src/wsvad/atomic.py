"""The one way wsvad replaces a file: a unique temporary name next to it, fsync, rename, fsync.

Every file a reader may open while a writer runs (configs, checkpoints, scores, reports, plots, the
store's JSON, converted weights, generated videos) goes through :func:`atomic_path`:

- the temporary file is in the target's directory (a rename is atomic only within a filesystem)
  and its name is unique per call (``.<name>.<random>.tmp``), so two writers never share one;
- its bytes are fsynced before the rename and the directory after it, so after a power cut the
  target is the old file or the new one, never an empty or half-written file;
- on any error the temporary file is deleted and the target is untouched.

No wsvad imports: every package may use it (docs/architecture.md, foundation).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_NAME_MAX = 255  # bytes in one file name on the filesystems wsvad supports (ext4, xfs, NFS, tmpfs)


def temp_name(path: Path, suffix: str = "") -> Path:
    """A fresh hidden name next to ``path``: ``.<name>.<8 hex>.tmp<suffix>``, cut to fit 255 bytes.

    ``suffix`` is for writers that pick a format from the file name (PyAV: ``.mp4``).
    """
    tail = f".{uuid.uuid4().hex[:8]}.tmp{suffix}"
    room = _NAME_MAX - len(os.fsencode(tail)) - 1
    name = os.fsdecode(os.fsencode(path.name)[:room])
    return path.with_name(f".{name}{tail}")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; filesystems that cannot fsync a directory are let
    be (the rename is still atomic there)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # EINVAL on some network and FUSE filesystems
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write; on a clean exit it replaces ``path`` durably.

    For writers that want a file name (``fig.savefig``, ``safetensors.save_file``, PyAV,
    ``np.lib.format.open_memmap``). The temporary file is deleted if the block raises.
    """
    path = Path(path)
    tmp = temp_name(path, suffix)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path | str, text: str) -> None:
    """UTF-8 text with ``\\n`` line ends on every platform."""
    write_bytes_atomic(path, text.encode("utf-8"))


def move_durably(src: Path | str, dst: Path | str) -> None:
    """Rename an existing file over ``dst`` (same directory) and make the rename durable."""
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)
