"""Streaming frame decoding: decord (default), PyAV (fallback), or a folder of frame images.

Every reader yields uint8 RGB frames ``[H, W, 3]`` one at a time, so memory does not grow with the
length of the video. Frame counts come from decoding, never from container headers (which are often
wrong or missing); headers are only used as an estimate to plan how a long video is split.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from wsvad.data.listfiles import IMAGE_EXTS, frame_images

log = logging.getLogger(__name__)

Decoder = Literal["decord", "av", "frames"]  # the readers ("frames": a folder of images)
DecoderChoice = Literal["auto", "decord", "av"]  # the config's choice; auto: decord, then PyAV


class DecodeError(Exception):
    """A video could not be decoded; ``decoder`` says which reader failed and ``kind`` what the
    reader raised (``DECORDError``, ``InvalidDataError``, ...; the class name when raised here).

    The only exception that marks a video as failed: the readers' own errors are translated into
    it where they are raised (:func:`reading`), so a RuntimeError or MemoryError of the model, the
    store or the host can never be mistaken for a bad video.
    """

    def __init__(self, message: str, decoder: str, kind: str | None = None):
        super().__init__(message)
        self.decoder = decoder
        self.kind = kind or type(self).__name__

    def __reduce__(self):  # keep decoder and kind across processes (dask pickles exceptions)
        return type(self), (str(self), self.decoder, self.kind)


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows before decoding: ``n_frames_hint`` is a header estimate (may be
    wrong)."""

    decoder: Decoder
    fps: float | None
    n_frames_hint: int
    width: int
    height: int


def reader_errors() -> tuple[type[BaseException], ...]:
    """What the readers raise on a file they cannot decode (only ever caught by :func:`reading`).

    decord raises its own ``DECORDError`` (not a RuntimeError subclass) on corrupt data, and
    RuntimeError on files it cannot open; PyAV raises ``av.error.FFmpegError`` (a ValueError or
    OSError). MemoryError is not among them: a full memory is the host's problem, not the video's.
    """
    errors: list[type[BaseException]] = [RuntimeError, OSError, ValueError, EOFError]
    try:
        from decord._ffi.base import DECORDError

        errors.append(DECORDError)
    except ImportError:  # decord missing: only PyAV and frame folders can be used
        pass
    return tuple(errors)


@contextmanager
def reading(decoder: str) -> Iterator[None]:
    """Turn what a reader raises inside the block into :class:`DecodeError` (kind = its class).

    Wrap only code that reads the video: the translation is what lets the worker tell a broken
    video from a broken machine.
    """
    try:
        yield
    except DecodeError:
        raise
    except reader_errors() as exc:
        raise DecodeError(str(exc) or type(exc).__name__, decoder, type(exc).__name__) from exc


def _check_decoder(decoder: str) -> None:
    if decoder not in ("decord", "av"):
        raise ValueError(f"decoder must be 'decord' or 'av', got {decoder!r}")


def is_frame_folder(path: Path) -> bool:
    return Path(path).is_dir()


def list_frame_files(folder: Path) -> list[Path]:
    """The frames of a frame folder (:func:`~wsvad.data.listfiles.frame_images`); none: an error."""
    files = frame_images(folder)
    if not files:
        suffixes = "/".join(sorted(IMAGE_EXTS))
        raise DecodeError(f"{folder}: frame folder holds no {suffixes} images", "frames")
    return files


def probe(path: Path, decoder: Decoder, fps_hint: float | None = None) -> VideoInfo:
    """Open ``path`` with ``decoder`` (``decord`` or ``av``; folders always use ``frames``).

    Raises :class:`DecodeError` for a file the reader cannot open.
    """
    path = Path(path)
    if is_frame_folder(path):
        with reading("frames"):
            files = list_frame_files(path)
            first = _read_image(files[0])
        return VideoInfo("frames", fps_hint, len(files), first.shape[1], first.shape[0])
    _check_decoder(decoder)
    if not path.is_file():
        raise DecodeError(f"{path}: no such file", decoder)
    if path.stat().st_size == 0:
        raise DecodeError(f"{path}: empty file (0 bytes)", decoder)
    with reading(decoder):
        return _probe_decord(path) if decoder == "decord" else _probe_av(path)


def _probe_decord(path: Path) -> VideoInfo:
    import decord

    reader = decord.VideoReader(str(path), num_threads=1)
    height, width = reader[0].shape[:2] if len(reader) else (0, 0)
    return VideoInfo("decord", float(reader.get_avg_fps()) or None, len(reader), width, height)


def _probe_av(path: Path) -> VideoInfo:
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


def iter_frames(path: Path, decoder: Decoder, start: int = 0) -> Iterator[np.ndarray]:
    """Yield RGB frames ``[H, W, 3]`` uint8 from frame ``start`` to the end, one at a time.

    Whatever the reader raises while decoding arrives as :class:`DecodeError`.
    """
    path = Path(path)
    folder = is_frame_folder(path)
    if not folder:
        _check_decoder(decoder)
    with reading("frames" if folder else decoder):
        if folder:
            for file in list_frame_files(path)[start:]:
                yield _read_image(file)
        elif decoder == "decord":
            yield from _iter_decord(path, start)
        else:
            yield from _iter_av(path, start)


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
