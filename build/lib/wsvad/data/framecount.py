"""The exact frame count of a video file or frame folder.

Shared by ``wsvad evaluate`` (frame-level ground truth needs the true count) and ``wsvad import
--probe-frames``; it lives in ``data/`` so that both may import it. ``wsvad check`` uses the faster
:func:`wsvad.data.check.probe_frame_count` instead, which reads what the container header claims.
decord and PyAV are imported when a video is counted, never at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wsvad.data.listfiles import IMAGE_EXTS

log = logging.getLogger(__name__)


def probe_frame_count(path: Path) -> int | None:
    """Number of frames of a video file or frame folder; ``None`` when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS) or None
    try:
        import decord

        return len(decord.VideoReader(str(path), num_threads=1))
    except Exception as exc:  # noqa: BLE001 - decord raises its own error types; PyAV gets a try
        log.debug("%s: decord could not count frames (%s); trying PyAV", path, exc)
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # Counting demuxed packets is exact for the benchmarks' codecs and needs no decoding.
            return sum(1 for packet in container.demux(stream) if packet.size > 0) or None
    except Exception as exc:  # noqa: BLE001 - any container error means "unreadable"
        log.warning("%s: cannot count frames (%s)", path, exc)
        return None
