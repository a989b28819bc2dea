"""Whose fault is it: a broken video, or a broken model, store or machine?

Only :class:`~wsvad.extract.decode.DecodeError` (what a reader raised while reading the video) marks
a video as failed. Anything else raised while extracting it (a MemoryError, a "CUDA out of memory"
RuntimeError or a shape error in the forward pass, a full disk under the store, a bug) says nothing
about the video: it stops the whole run with one line (exit 1), finished videos stay in the store
and the failure table is left as it was, so a cluster shard never marks its videos "failed" for a
machine problem.
"""

from __future__ import annotations

import re

from wsvad.errors import WsvadError

_OUT_OF_MEMORY = re.compile(r"out of memory|can't allocate memory|cannot allocate memory", re.I)


class ForwardFailed(Exception):
    """Raised by the model loop, chained to what the backbone raised, so the stop line can say
    that the forward pass (not decoding or the store) failed. Never leaves the worker."""


def one_line(exc: BaseException) -> str:
    """A short single-line reason (FFmpeg's "[Errno 1094995529]" prefix says nothing to a user)."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", " ".join(str(exc).split()))
    return (text or type(exc).__name__)[:300]


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or bool(_OUT_OF_MEMORY.search(str(exc)))


def stop_error(exc: BaseException, source: str, backbone: str, device: str) -> WsvadError:
    """The one-line error that stops the run after ``exc`` was raised while extracting ``source``.

    >>> str(stop_error(MemoryError(), "a.mp4", "i3d", "cpu"))[:75]
    'a.mp4: extraction stopped: out of memory in the forward pass of backbone i3'
    """
    if isinstance(exc, WsvadError):  # already says what failed (store writes, backbone building)
        return exc
    forward = isinstance(exc, ForwardFailed) and exc.__cause__ is not None
    cause = exc.__cause__ if forward else exc
    where = f"the forward pass of backbone {backbone!r} on {device}"
    detail = type(cause).__name__
    if str(cause):
        detail += f": {one_line(cause)}"
    if is_out_of_memory(cause):
        what = f"out of memory in {where}" if forward else "out of memory"
        fix = "free memory or lower batch_clips"
    elif forward:
        what, fix = f"{where} raised an error", "fix the backbone or its options"
    else:
        what, fix = "an unexpected error (a bug in wsvad)", "please report it"
    return WsvadError(
        f"{source}: extraction stopped: {what} ({detail}); this is not the video's fault, so it "
        f"is not recorded as failed and videos already complete are kept: {fix}, then run the "
        "same command to resume"
    )
