"""Suspect videos: decoded fine, but not as long as their container declares.

A truncated file (an MP4 cut to 99 of its 420 frames, an AVI, MKV or MPEG-TS cut after its header)
decodes without an error, and so does footage whose container drops or repeats frames (OpenCV's
``tree.avi`` declares 444 frames over 29.6 s and decodes to 68 frames at 15 fps, its timeline
squeezed 6.5x; an AVI with null frames does the same). Stored as they are, frame index / fps is
not time any more: snippets, intervals and scores no longer line up with the video.

This module compares what the container declares (:func:`declared_facts`: header frame count,
stream duration, fps) with what was decoded (extraction; ``wsvad check`` with the frame count it
takes anyway, :func:`wsvad.data.framecount.frame_count`) or demuxed (no decoding), and describes
the disagreement as a plain-JSON ``suspect`` entry (:func:`find_suspect`). When there is one, the
packets' timestamps tell the two causes apart (:func:`packet_facts`): data that stops early is a
cut file; data that spans the declared duration with fewer frames is a container that
drops frames. An MPEG-TS has no header length: it is suspect when it ends inside a 188-byte packet
(a cut on a packet boundary cannot be seen).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TS_PACKET = 188  # bytes of an MPEG transport stream packet (192 in M2TS: 4-byte timestamp + 188)
MIN_TOLERANCE = 2  # frames: decoders may deliver a frame or two fewer than the header counts
RELATIVE_TOLERANCE = 0.01  # of the declared length: rounding of durations and rates


def tolerance(n_frames: float) -> int:
    """Frames by which decoded and declared lengths may differ before a video is suspect."""
    return max(MIN_TOLERANCE, math.ceil(RELATIVE_TOLERANCE * n_frames))


def declared_facts(path: Path | str) -> dict[str, Any] | None:
    """What the container of ``path`` says about its video stream, read from the header (PyAV,
    no decoding): ``frames`` (header frame count), ``duration`` (seconds) and where it comes from,
    ``fps``, ``format``, and for MPEG-TS whether the file ends inside a packet.

    ``None`` for a frame folder or a file PyAV cannot open (nothing is declared).
    """
    import av

    path = Path(path)
    if path.is_dir():
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.base_rate
            duration, duration_from = _duration(container, stream)
            facts: dict[str, Any] = {
                "format": container.format.name,
                "frames": int(stream.frames) or None,
                "duration": None if duration is None else round(duration, 4),
                "duration_from": duration_from,
                "fps": round(float(rate), 4) if rate else None,
            }
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        log.debug("%s: no declared facts (%s)", path, exc)
        return None
    if facts["format"] == "mpegts":
        size = path.stat().st_size
        facts["ts_partial_packet"] = bool(size % TS_PACKET and size % (TS_PACKET + 4))
    return facts


def _duration(container: Any, stream: Any) -> tuple[float | None, str | None]:
    """The video stream's declared duration in seconds and its source."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base), "stream"
    # Matroska keeps per-track durations as a DURATION tag ("00:00:04.800000000")
    tag = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", stream.metadata.get("DURATION", ""))
    if tag:
        hours, minutes, seconds = tag.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds), "stream tag"
    # the container's duration is the longest stream's: only the video's when it is alone
    if container.duration and len(container.streams) == 1:
        return container.duration / 1_000_000, "container"
    return None, None


def packet_facts(path: Path | str) -> dict[str, Any] | None:
    """Demux (no decoding) the video stream: ``packets`` (non-empty ones, one per frame) and
    ``span``, the seconds from the first packet's timestamp to the end of the last one.

    ``None`` when the file cannot be demuxed at all.
    """
    import av

    first = end = None
    count = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                count += 1
                if packet.pts is not None:
                    stop = packet.pts + (packet.duration or 0)
                    first = packet.pts if first is None else min(first, packet.pts)
                    end = stop if end is None else max(end, stop)
            base = stream.time_base
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        log.debug("%s: cannot demux (%s)", path, exc)
        return None
    span = float((end - first) * base) if first is not None and base else None
    return {"packets": count, "span": None if span is None else round(span, 4)}


def find_suspect(
    declared: dict[str, Any] | None, decoded: dict[str, Any], counted: str = "decoded"
) -> dict | None:
    """The ``suspect`` entry of a video whose decoded length disagrees with ``declared``;
    ``None`` when they agree (within :func:`tolerance`) or nothing is declared.

    Args:
        declared: :func:`declared_facts` of the file.
        decoded: ``{"frames": n, "fps": f}``: frames decoded (or demuxed) and the frame rate the
            timeline is read at (``fps`` may be ``None``: no duration check).
        counted: how the frames were counted, for the reason: ``decoded`` or ``demuxed``.

    Returns:
        ``{"reason", "findings", "declared", "decoded"}``: plain JSON; ``findings`` lists what
        disagrees: ``frames`` (the header's count), ``duration`` (the declared seconds against
        frames / fps), ``ts-packet`` (an MPEG-TS ending inside a packet).
    """
    if not declared:
        return None
    n, fps = int(decoded["frames"]), decoded.get("fps")
    reasons: dict[str, str] = {}
    header = declared.get("frames")
    if header and abs(n - header) > tolerance(header):
        reasons["frames"] = (
            f"{counted} {n} of the {header} frames the header declares"
            if n < header
            else f"{counted} {n} frames, the header declares {header}"
        )
    seconds = declared.get("duration")
    if seconds and fps and abs(n - seconds * fps) > tolerance(seconds * fps):
        spans = n / fps
        if spans >= seconds:
            how = f"stretched {spans / seconds:.1f}x"
        else:
            how = f"squeezed {seconds / spans:.1f}x" if spans else "empty"
        reasons["duration"] = (
            f"{n} frames at {fps:g} fps span {spans:.2f} s, the container declares "
            f"{seconds:.2f} s (timeline {how})"
        )
    if declared.get("ts_partial_packet"):
        reasons["ts-packet"] = f"the file ends inside a {TS_PACKET}-byte MPEG-TS packet (cut)"
    if not reasons:
        return None
    return {
        "reason": "; ".join(reasons.values()),
        "findings": list(reasons),
        "declared": declared,
        "decoded": {
            "frames": n,
            "fps": fps,
            "duration": round(n / fps, 4) if fps else None,
        },
    }


def explain(entry: dict[str, Any], packets: dict[str, Any] | None) -> dict[str, Any]:
    """Add the likely ``cause`` to a suspect ``entry`` from the packets' timestamps: ``truncated``
    (the data stops before the declared end) or ``dropped-frames`` (the data spans the declared
    length, with fewer frames: null frames, a variable frame rate, or frames the decoder skipped);
    ``None`` when the timestamps cannot tell.

    The declared length is the longer of the stated duration and the header's frames / fps (FFmpeg
    re-estimates the duration of a cut AVI from its data; its header still counts every frame).
    """
    declared, fps = entry["declared"], entry["decoded"].get("fps")
    span = (packets or {}).get("span")
    seconds = max(declared.get("duration") or 0, (declared.get("frames") or 0) / (fps or math.inf))
    cause = note = None
    if "ts-packet" in entry["findings"]:
        cause = "truncated"
    elif span is not None and seconds and fps:
        slack = tolerance(seconds * fps) / fps
        if span < seconds - slack:
            cause = "truncated"
            note = f"the data ends at {span:.2f} s of the declared {seconds:.2f} s: cut file"
        elif entry["decoded"]["frames"] < seconds * fps:
            cause = "dropped-frames"
            note = (
                f"the data spans the declared {seconds:.2f} s: frames missing in between "
                "(null frames, variable frame rate, undecodable frames)"
            )
    reason = f"{entry['reason']}; {note}" if note else entry["reason"]
    return {**entry, "reason": reason, "cause": cause, "packets": packets}


def suspect_of(path: Path | str, frames: int | None, fps: float | None) -> dict | None:
    """The suspect entry of a decoded video (extraction): its ``frames`` decoded at ``fps``
    against what its container declares; ``None`` when they agree or nothing is declared."""
    if frames is None:
        return None
    entry = find_suspect(declared_facts(path), {"frames": frames, "fps": fps})
    return explain(entry, packet_facts(path)) if entry else None


def probe_suspect(path: Path | str, frames: int | None = None) -> dict | None:
    """The suspect entry of a video before extraction (``wsvad check``): ``frames`` (its frame
    count, :func:`wsvad.data.framecount.frame_count`), or when not given its demuxed packets, at
    the declared fps, against what its container declares."""
    declared = declared_facts(path)
    if declared is None:
        return None
    packets = packet_facts(path) if frames is None else None
    if frames is None and packets is None:
        return None
    counted = "decoded" if frames is not None else "demuxed"
    count = frames if frames is not None else packets["packets"]
    entry = find_suspect(declared, {"frames": count, "fps": declared["fps"]}, counted)
    if entry is None:
        return None
    return explain(entry, packets if packets is not None else packet_facts(path))
