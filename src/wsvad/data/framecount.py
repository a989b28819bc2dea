"""A video's frame count: one definition for check, extract, import and evaluate.

**The frame count of a video is the number of frames extraction decodes from it** (the store's
``n_frames``): for a frame folder, its images (:func:`wsvad.data.listfiles.frame_images`, the set
extraction reads); for a video file, the frames of decord's index (extraction's first reader), or,
where decord cannot open the file, the frames PyAV decodes (extraction's fallback). Frame-level
ground truth has exactly this many labels, `wsvad check --probe` tests annotated intervals against
it, `wsvad import --probe-frames` stores it, and tests/data/test_framecount.py checks that a
store extracted from the same videos records the same numbers.

What a container *declares* (header frame count, or duration x fps) is a different quantity,
:func:`declared_frame_count`: a truncated or variable-frame-rate file declares more or fewer
frames than it holds. It is only ever compared with the frame count, never used as one.

decord and PyAV are imported when a video is counted, never at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wsvad.data.listfiles import count_images
from wsvad.data.suspects import declared_facts

log = logging.getLogger(__name__)


def frame_count(path: Path) -> tuple[int | None, str]:
    """``(frames, how)`` with ``how`` one of ``images``, ``decord``, ``av``; ``(None, reason)``
    when the video cannot be read (or holds no frame)."""
    path = Path(path)
    if path.is_dir():
        n = count_images(path)
        return (n, "images") if n else (None, "no images in the frame folder")
    try:
        import decord

        n = len(decord.VideoReader(str(path), num_threads=1))
        if n:
            return n, "decord"
    except Exception as exc:  # noqa: BLE001 - decord raises its own error types; PyAV gets a try
        log.debug("%s: decord could not count frames (%s); trying PyAV", path, exc)
    try:
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                return None, "no video stream"
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            n = sum(1 for _ in container.decode(stream))
        return (n, "av") if n else (None, "no frame could be decoded")
    except Exception as exc:  # noqa: BLE001 - any container or codec error means "unreadable"
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def probe_frame_count(path: Path) -> int | None:
    """:func:`frame_count` without the how; ``None`` (logged) when the video cannot be read."""
    n, how = frame_count(path)
    if n is None:
        log.warning("%s: cannot count frames (%s)", path, how)
    return n


def declared_frame_count(path: Path) -> tuple[int | None, str]:
    """``(frames, how)`` as the container header declares them (``header``, ``duration x fps``),
    read without decoding (:func:`wsvad.data.suspects.declared_facts`); ``(None, reason)`` when the
    file states neither or cannot be opened. A frame folder declares its images."""
    path = Path(path)
    if path.is_dir():
        return count_images(path), "images"
    facts = declared_facts(path)
    if facts is None:
        return None, "PyAV cannot open it or it has no video stream"
    if facts["frames"]:
        return facts["frames"], "header"
    if facts["duration"] and facts["fps"]:
        return int(round(facts["duration"] * facts["fps"])), "duration x fps"
    return None, "header states no frame count or duration"
