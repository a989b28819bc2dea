"""A batch of broken and odd videos: every good one stored, every bad one in the failure table with
a one-line reason, exit code 3 with a summary naming them; short videos follow the tail rule."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.data.framecount import frame_count
from wsvad.errors import EXIT_PARTIAL
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

# video id -> (decoded frames, snippets with tail=pad) for the videos that must be stored
GOOD = {
    "good": (40, 3),
    "mp4_named_avi": (60, 4),
    "one_frame": (1, 1),
    "ten_frames": (10, 1),
    "tiny_32x24": (20, 2),
    "tall_48x320": (20, 2),
    "rotated": (20, 2),
    "vfr": (30, 2),
}
# video id -> (exception type, text the one-line reason must contain)
BAD = {
    "garbage": ("InvalidDataError", "Invalid data found when processing input"),
    "truncated": ("InvalidDataError", "Invalid data found when processing input"),
    "zero": ("DecodeError", "zero.mp4: empty file (0 bytes)"),
    "header_only": ("InvalidDataError", "Invalid data found"),
    "text_named_mp4": ("InvalidDataError", "Invalid data found when processing input"),
    "unknown_codec": (
        "DecodeError",
        "unknown_codec.mp4: unsupported video codec (FFmpeg has no decoder for it)",
    ),
}


def _mp4_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    out, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        out.append((data[i + 4 : i + 8], i, size))
        i += size
    return out


def _rotate_90(data: bytes) -> bytes:
    """Set the track header's display matrix to a 90 degree rotation (what phones write)."""
    identity = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    rotation = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    at = data.index(identity, data.index(b"tkhd"))
    return data[:at] + rotation + data[at + len(identity) :]


def _write_vfr(path: Path, n_frames: int = 30) -> None:
    """H.264 whose frame durations alternate 40 ms / 80 ms (variable frame rate)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        pts = 0
        for i in range(n_frames):
            image = np.full((48, 64, 3), 20, np.uint8)
            image[:, (2 * i) % 60 : (2 * i) % 60 + 4] = 250
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += 40 if i % 2 == 0 else 80
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture
def hostile_root(tmp_path, make_video) -> Path:
    root = tmp_path / "videos"
    make_video("videos/good.mp4", n_frames=40)
    whole = make_video("whole.mp4", n_frames=60).read_bytes()
    (root / "mp4_named_avi.avi").write_bytes(whole)
    make_video("videos/one_frame.mp4", n_frames=1)
    make_video("videos/ten_frames.mp4", n_frames=10)
    make_video("videos/tiny_32x24.mp4", n_frames=20, size=(32, 24), seed=3)
    make_video("videos/tall_48x320.mp4", n_frames=20, size=(48, 320), seed=4)
    rotated = make_video("rot.mp4", n_frames=20, size=(64, 48), seed=5).read_bytes()
    (root / "rotated.mp4").write_bytes(_rotate_90(rotated))
    _write_vfr(root / "vfr.mp4")
    (root / "garbage.mp4").write_bytes(
        np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes()
    )
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (root / "zero.mp4").write_bytes(b"")
    (root / "header_only.mp4").write_bytes(
        b"".join(whole[o : o + n] for t, o, n in _mp4_boxes(whole) if t != b"mdat")
    )
    (root / "text_named_mp4.mp4").write_text("this is a text file, not a video\n")
    # a real H.264 stream whose sample entry names a codec FFmpeg (so decord and PyAV) cannot decode
    (root / "unknown_codec.mp4").write_bytes(whole.replace(b"avc1", b"wsvd"))
    return root


def test_every_good_video_is_stored_and_every_bad_one_is_listed(
    hostile_root, tmp_path, tiny_args, capsys
):
    out = tmp_path / "store"
    code = run(tiny_args(hostile_root, out, "--workers", "0"))
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL
    assert f"{len(BAD)} video(s) failed (recorded in {out}/failures):" in err
    for vid, (exc, reason) in BAD.items():
        line = next(line for line in err.splitlines() if line.startswith(f"  {vid}: "))
        assert line.startswith(f"  {vid}: {exc}: ") and reason in line
    store = FeatureStore.open(out)
    assert store.video_ids() == sorted(GOOD)
    for vid, (n_frames, n_snippets) in GOOD.items():
        attrs = store.video_attrs(vid)
        assert (attrs["n_frames"], attrs["n_snippets"], attrs["decoder"]) == (
            n_frames,
            n_snippets,
            "decord",
        ), vid
        assert store.read(vid).shape == (n_snippets, 1, 16)
        # odd but whole: as long as their containers declare (no false suspect)
        assert attrs["suspect"] is None, vid
    assert "suspect" not in err
    table = store.failures()
    assert sorted(table) == sorted(BAD)
    for vid, (exc, reason) in BAD.items():
        assert table[vid]["exception"] == exc and reason in table[vid]["reason"], table[vid]
        assert "\n" not in table[vid]["reason"] and len(table[vid]["reason"]) <= 300
        assert table[vid]["decoder"] == "decord,av"  # both decoders were tried
    assert not (out / ".tmp").exists() or not tmp_entries(out)
    # one definition of a video's frame count: what check, import and evaluate count is what
    # extraction decoded and stored
    counted = {p.stem: frame_count(p) for p in hostile_root.iterdir()}
    assert {vid: n for vid, (n, _) in counted.items() if n is not None} == {
        vid: n_frames for vid, (n_frames, _) in GOOD.items()
    }, counted


def test_decord_and_pyav_agree_on_narrow_tall_rotated_and_vfr_videos(
    hostile_root, tmp_path, tiny_args, snapshot
):
    """decord pads narrow rows and applies rotation metadata; the decoders must still give the same
    features."""
    names = ["tiny_32x24.mp4", "tall_48x320.mp4", "rotated.mp4", "vfr.mp4", "one_frame.mp4"]
    root = tmp_path / "odd"
    root.mkdir()
    for name in names:
        (root / name).write_bytes((hostile_root / name).read_bytes())
    stores = {}
    for decoder in ("decord", "av"):
        assert run(tiny_args(root, tmp_path / decoder, "--workers", "0", "--decoder", decoder)) == 0
        stores[decoder] = snapshot(tmp_path / decoder)
    for vid, (features, attrs) in stores["decord"].items():
        np.testing.assert_array_equal(features, stores["av"][vid][0], err_msg=vid)
        assert attrs["n_frames"] == stores["av"][vid][1]["n_frames"]
    from wsvad.extract.decode import iter_frames

    # shown as a player shows it: portrait 48x64 frames of a 64x48 stream rotated by 90 degrees
    first = {d: next(iter_frames(root / "rotated.mp4", d)) for d in ("decord", "av")}
    assert first["decord"].shape == first["av"].shape == (64, 48, 3)
    np.testing.assert_array_equal(first["decord"], first["av"])


def test_short_videos_fail_only_under_tail_drop(hostile_root, tmp_path, tiny_args, capsys):
    root = tmp_path / "short"
    root.mkdir()
    for name in ("one_frame.mp4", "ten_frames.mp4", "good.mp4"):
        (root / name).write_bytes((hostile_root / name).read_bytes())
    assert (
        run(tiny_args(root, tmp_path / "drop", "--workers", "0", "--tail", "drop")) == EXIT_PARTIAL
    )
    err = capsys.readouterr().err
    assert (
        "  one_frame: TooShort: one_frame.mp4: 1 frames is shorter than one 16-frame snippet "
        "(tail=drop keeps no snippet)" in err
    )
    assert (
        "  ten_frames: TooShort: ten_frames.mp4: 10 frames is shorter than one 16-frame snippet"
        in err
    )
    store = FeatureStore.open(tmp_path / "drop")
    assert store.video_ids() == ["good"] and store.read("good").shape == (2, 1, 16)
    assert sorted(store.failures()) == ["one_frame", "ten_frames"]
    for tail, rows in (("pad", 1), ("loop", 1)):
        assert run(tiny_args(root, tmp_path / tail, "--workers", "0", "--tail", tail)) == 0
        assert FeatureStore.open(tmp_path / tail).read("one_frame").shape == (rows, 1, 16)


def test_a_tif_frame_folder_that_passes_check_is_extracted(tmp_path, tiny_args, capsys):
    """One image-suffix set: ``.tif``/``.tiff`` frames passed ``wsvad check`` and then failed
    extraction ("holds no .jpg/.jpeg/.png/.bmp images"); hidden ``._*`` files are not frames."""
    from PIL import Image

    folder = tmp_path / "videos" / "clip"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(20):
        image = rng.integers(0, 255, (48, 64, 3), np.uint8)
        Image.fromarray(image).save(folder / f"{i:03d}.{'tif' if i % 2 else 'tiff'}")
    (folder / "._000.tif").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    root = tmp_path / "videos"
    assert run(["check", "--dataset", "folder", "--root", str(root), "--probe", "all"]) == 0
    assert frame_count(folder) == (20, "images")
    assert run(tiny_args(root, tmp_path / "store", "--workers", "0")) == 0, capsys.readouterr().err
    attrs = FeatureStore.open(tmp_path / "store").video_attrs("clip")
    assert (attrs["n_frames"], attrs["n_snippets"], attrs["decoder"]) == (20, 2, "frames")
