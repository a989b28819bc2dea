"""Streaming frame decoding: decord (default), PyAV (fallback), or a folder of frame images.

Every reader yields uint8 RGB frames ``[H, W, 3]`` one at a time, so memory does not grow with the
length of the video. Frame counts come from decoding, never from container headers (which are often
wrong or missing); headers are only used as an estimate to plan how a long video is split.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

Decoder = Literal["decord", "av", "frames"]  # the readers ("frames": a folder of images)
DecoderChoice = Literal["auto", "decord", "av"]  # the config's choice; auto: decord, then PyAV
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DecodeError(Exception):
    """A video could not be decoded; ``decoder`` says which reader failed."""

    def __init__(self, message: str, decoder: str):
        super().__init__(message)
        self.decoder = decoder


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows before decoding: ``n_frames_hint`` is a header estimate (may be
    wrong)."""

    decoder: Decoder
    fps: float | None
    n_frames_hint: int
    width: int
    height: int


def decode_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this file cannot be decoded" (not a bug in wsvad).

    decord raises its own ``DECORDError`` (not a RuntimeError subclass) on corrupt data, and
    RuntimeError on files it cannot open; PyAV raises ``av.error.FFmpegError`` (a ValueError).
    """
    errors: list[type[BaseException]] = [DecodeError, RuntimeError, OSError, ValueError, EOFError]
    try:
        from decord._ffi.base import DECORDError

        errors.append(DECORDError)
    except ImportError:  # decord missing: only PyAV and frame folders can be used
        pass
    return tuple(errors)


def is_frame_folder(path: Path) -> bool:
    return Path(path).is_dir()


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in natural order (``2.jpg`` before ``10.jpg``)."""
    files = [
        p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    ]
    if not files:
        raise DecodeError(
            f"{folder}: frame folder holds no {'/'.join(IMAGE_SUFFIXES)} images", "frames"
        )
    return sorted(files, key=lambda p: _natural_key(p.name))


def probe(path: Path, decoder: Decoder, fps_hint: float | None = None) -> VideoInfo:
    """Open ``path`` with ``decoder`` (``decord`` or ``av``; folders always use ``frames``)."""
    path = Path(path)
    if is_frame_folder(path):
        files = list_frame_files(path)
        first = _read_image(files[0])
        return VideoInfo("frames", fps_hint, len(files), first.shape[1], first.shape[0])
    if not path.is_file():
        raise DecodeError(f"{path}: no such file", decoder)
    if path.stat().st_size == 0:
        raise DecodeError(f"{path}: empty file (0 bytes)", decoder)
    if decoder == "decord":
        import decord

        reader = decord.VideoReader(str(path), num_threads=1)
        height, width = reader[0].shape[:2] if len(reader) else (0, 0)
        return VideoInfo("decord", float(reader.get_avg_fps()) or None, len(reader), width, height)
    if decoder == "av":
        import av

        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: no video stream", "av")
            stream = container.streams.video[0]
            if stream.codec_context is None:  # FFmpeg knows no decoder for the stream's codec tag
                raise DecodeError(
                    f"{path}: unsupported video codec (FFmpeg has no decoder for it)", "av"
                )
            rate = float(stream.average_rate) if stream.average_rate else None
            hint = stream.frames
            if not hint and stream.duration and stream.time_base and rate:
                hint = int(stream.duration * stream.time_base * rate)
            elif not hint and container.duration and rate:
                hint = int(container.duration / 1_000_000 * rate)
            return VideoInfo(
                "av", rate, int(hint or 0), stream.codec_context.width, stream.codec_context.height
            )
    raise ValueError(f"decoder must be 'decord' or 'av', got {decoder!r}")


def iter_frames(path: Path, decoder: Decoder, start: int = 0) -> Iterator[np.ndarray]:
    """Yield RGB frames ``[H, W, 3]`` uint8 from frame ``start`` to the end, one at a time."""
    path = Path(path)
    if is_frame_folder(path):
        for file in list_frame_files(path)[start:]:
            yield _read_image(file)
    elif decoder == "decord":
        yield from _iter_decord(path, start)
    elif decoder == "av":
        yield from _iter_av(path, start)
    else:
        raise ValueError(f"decoder must be 'decord' or 'av', got {decoder!r}")


def _iter_decord(path: Path, start: int) -> Iterator[np.ndarray]:
    import decord

    # one decoding thread: the worker's cores belong to the model; decode overlaps via prefetch
    reader = decord.VideoReader(str(path), num_threads=1)
    if start >= len(reader):
        return
    if start:
        reader.seek_accurate(start)
    while True:
        try:
            frame = reader.next()
        except StopIteration:
            return
        yield _unpad(frame.asnumpy())


def _unpad(frame: np.ndarray) -> np.ndarray:
    """Undo a decord bug: for some widths (e.g. 32, 48, 96) it returns padded rows as extra
    channels, ``[H, W, linesize / W]``; the pixels are the first ``3 W`` bytes of each row (checked
    against PyAV)."""
    if frame.ndim == 3 and frame.shape[2] != 3:
        height, width = frame.shape[:2]
        return np.ascontiguousarray(
            frame.reshape(height, -1)[:, : 3 * width].reshape(height, width, 3)
        )
    return frame


def _iter_av(path: Path, start: int) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise DecodeError(f"{path}: no video stream", "av")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # frames before ``start`` are decoded but not converted: exact, and cheap next to the model
        for index, frame in enumerate(container.decode(stream)):
            if index >= start:
                # decord applies the rotation metadata (as players do); so must PyAV, or the two
                # decoders (and the pieces of one split video) would disagree on rotated phone
                # videos
                turns = round(getattr(frame, "rotation", 0) / 90) % 4
                array = frame.to_ndarray(format="rgb24")
                yield np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise DecodeError(f"{path}: unreadable image ({exc})", "frames") from exc


# ---------------------------------------------------------------------------- fps resampling
def fps_ratio(source_fps: float, target_fps: float) -> Fraction:
    """Source frames per output frame as an exact fraction (29.97 is read as 30000/1001)."""
    if not source_fps or source_fps <= 0:
        raise ValueError(
            "the source fps is unknown, so the video cannot be resampled to a target fps"
        )
    return Fraction(source_fps).limit_denominator(10000) / Fraction(target_fps).limit_denominator(
        10000
    )


def source_index(output_index: int, ratio: Fraction) -> int:
    """Source frame shown at output frame ``m``: the frame on screen at time ``m / target_fps``."""
    return math.floor(output_index * ratio)


def resample(
    frames: Iterator[np.ndarray], ratio: Fraction, first_source: int, first_output: int
) -> Iterator[np.ndarray]:
    """Nearest-earlier-frame resampling of a stream that starts at source frame ``first_source``.

    Yields output frames from ``first_output`` on; a source frame is repeated (upsampling) or
    skipped (downsampling) as the exact ``ratio`` dictates, so all decoders agree frame for frame.
    """
    if source_index(first_output, ratio) != first_source:
        raise ValueError(
            f"output frame {first_output} shows source frame {source_index(first_output, ratio)}, "
            f"not {first_source}"
        )
    out = first_output
    for src, frame in enumerate(frames, start=first_source):
        while source_index(out, ratio) == src:
            yield frame
            out += 1


def resampled_count(n_source: int, ratio: Fraction) -> int:
    """Output frames of a video with ``n_source`` frames: those whose source index exists."""
    return math.ceil(n_source / ratio)
