"""Decoding: exact, identical frame counts across decord and PyAV; frame folders; errors;
streaming."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from wsvad.extract.decode import (
    DecodeError,
    fps_ratio,
    iter_frames,
    list_frame_files,
    probe,
    resample,
    resampled_count,
    source_index,
)

CASES = [  # codec, extension, frames, (width, height): odd frame counts, sizes not multiples of 16
    ("libx264", "mp4", 41, (70, 46)),
    ("libx264", "mkv", 50, (64, 48)),  # mkv: no frame count in the header
    ("mpeg4", "avi", 37, (66, 50)),
    ("mjpeg", "avi", 33, (63, 49)),
]


@pytest.mark.parametrize("codec,ext,n,size", CASES)
def test_decoders_agree_on_exact_frame_count(make_video, codec, ext, n, size):
    path = make_video(f"v.{ext}", n_frames=n, size=size, codec=codec)
    by_decoder = {d: np.stack(list(iter_frames(path, d))) for d in ("decord", "av")}
    for frames in by_decoder.values():
        assert frames.shape == (n, size[1], size[0], 3) and frames.dtype == np.uint8
    diff = np.abs(by_decoder["decord"].astype(int) - by_decoder["av"].astype(int)).max()
    # same pixels, except MJPEG where the two libraries convert full-range YUV slightly differently
    assert diff <= (8 if codec == "mjpeg" else 0)
    assert probe(path, "av").fps == probe(path, "decord").fps == 25.0


@pytest.mark.parametrize("decoder", ["decord", "av"])
def test_start_offset_is_frame_exact(make_video, decoder):
    path = make_video("v.mp4", n_frames=60, size=(64, 48))
    whole = np.stack(list(iter_frames(path, decoder)))
    np.testing.assert_array_equal(np.stack(list(iter_frames(path, decoder, start=37))), whole[37:])
    assert list(iter_frames(path, decoder, start=60)) == []


def test_frame_folder_natural_order(tmp_path):
    from PIL import Image

    folder = tmp_path / "01_0014"
    folder.mkdir()
    for i in range(12):  # 2.png must come before 10.png
        Image.fromarray(np.full((8, 10, 3), i * 10, np.uint8)).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("ignored")
    assert [p.name for p in list_frame_files(folder)][:3] == ["0.png", "1.png", "2.png"]
    frames = list(iter_frames(folder, "decord", start=3))
    assert [int(f[0, 0, 0]) for f in frames] == [i * 10 for i in range(3, 12)]
    info = probe(folder, "decord", fps_hint=24.0)
    assert (info.decoder, info.n_frames_hint, info.width, info.height, info.fps) == (
        "frames",
        12,
        10,
        8,
        24.0,
    )


def test_unreadable_frame_image_names_the_file(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DecodeError, match=r"000\.jpg: unreadable image"):
        probe(folder, "av")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DecodeError, match="frame folder holds no"):
        list(iter_frames(empty, "av"))


@pytest.mark.parametrize("decoder", ["decord", "av"])
def test_broken_files_raise_decode_errors(tmp_path, make_video, decoder):
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    with pytest.raises(DecodeError, match=r"zero\.mp4: empty file \(0 bytes\)"):
        probe(zero, decoder)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(DecodeError) as raised:
        probe(garbage, decoder)
    # what the reader raised is kept as the kind (decord: RuntimeError; PyAV: InvalidDataError)
    assert (
        raised.value.kind in ("RuntimeError", "InvalidDataError")
        and raised.value.decoder == decoder
    )
    truncated = tmp_path / "trunc.mp4"  # mp4 cut in half: its index (moov) is lost
    truncated.write_bytes(make_video("whole.mp4", n_frames=40).read_bytes()[:2000])
    with pytest.raises(DecodeError):
        list(iter_frames(truncated, decoder))


@pytest.mark.parametrize("decoder", ["decord", "av"])
def test_truncated_streamable_file_gives_the_same_partial_count(make_video, tmp_path, decoder):
    data = make_video("whole.mkv", n_frames=50).read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    assert len(list(iter_frames(cut, decoder))) == len(list(iter_frames(cut, "av"))) < 50


def test_reader_errors_become_decode_errors_and_nothing_else_does(
    tmp_path, make_video, monkeypatch
):
    import decord
    from decord._ffi.base import DECORDError

    video = make_video("v.mp4", n_frames=20)

    class Broken:
        def __init__(self, error):
            self.error = error

        def __call__(self, *args, **kwargs):
            raise self.error

    monkeypatch.setattr(decord, "VideoReader", Broken(DECORDError("corrupt packet")))
    with pytest.raises(DecodeError, match="^corrupt packet$") as raised:
        list(iter_frames(video, "decord"))
    assert (raised.value.kind, raised.value.decoder) == ("DECORDError", "decord")
    assert isinstance(raised.value.__cause__, DECORDError)
    # a full memory is the host's problem: it passes through untranslated
    monkeypatch.setattr(decord, "VideoReader", Broken(MemoryError()))
    with pytest.raises(MemoryError):
        probe(video, "decord")
    # a DecodeError survives pickling (dask sends exceptions between processes)
    import pickle

    copy = pickle.loads(pickle.dumps(DecodeError("x", "av", "InvalidDataError")))
    assert (str(copy), copy.decoder, copy.kind) == ("x", "av", "InvalidDataError")


def test_resampling_is_exact_and_streaming():
    ratio = fps_ratio(30000 / 1001, 24)  # NTSC to 24 fps
    assert ratio == Fraction(30000, 1001) / 24
    source = (np.array([i]) for i in range(300))
    out = [int(f[0]) for f in resample(source, ratio, 0, 0)]
    assert (
        len(out) == resampled_count(300, ratio) == 241
    )  # 10.01 s of video: 240.24 frames at 24 fps
    assert out[:6] == [0, 1, 2, 3, 4, 6]  # every fifth source frame is skipped
    up = [int(f[0]) for f in resample((np.array([i]) for i in range(5)), fps_ratio(12, 24), 0, 0)]
    assert up == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    # a piece starting mid-video continues the same timeline
    first = source_index(120, ratio)
    tail = [
        int(f[0]) for f in resample((np.array([i]) for i in range(first, 300)), ratio, first, 120)
    ]
    assert first == 149 and tail == out[120:]
    with pytest.raises(ValueError, match="output frame 120 shows source frame 149, not 150"):
        next(resample(iter([]), ratio, 150, 120))
    with pytest.raises(ValueError, match="source fps is unknown"):
        fps_ratio(None, 24)


def test_memory_does_not_grow_with_video_length(make_video):
    path = make_video("long.mp4", n_frames=800, size=(320, 240))  # 184 MB of raw RGB
    script = f"""
import resource, sys
from wsvad.extract.decode import iter_frames
for decoder in ("decord", "av"):
    frames = iter_frames({str(path)!r}, decoder)
    next(frames)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = 1 + sum(1 for _ in frames)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(decoder, n, round(grown))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        decoder, n, grown_mb = line.split()
        assert int(n) == 800
        assert int(grown_mb) < 60, f"{decoder} grew by {grown_mb} MB while decoding"
