"""Suspect videos (wsvad.data.suspects): each kind made with PyAV (MP4, AVI, MKV and MPEG-TS cut
after their header, null frames in an AVI, a squeezed MKV timeline) is found by demuxing, with its
cause; intact files of every container are not; ``wsvad check`` warns about them."""

from __future__ import annotations

import pytest

from wsvad.cli import run
from wsvad.cli.app import console
from wsvad.data.suspects import declared_facts, explain, find_suspect, probe_suspect, tolerance

FASTSTART = {"movflags": "faststart"}  # moov first: a cut MP4 keeps its index (as camera files do)
GAPS = [6 * i for i in range(40)]  # 40 frames shown over 235 ticks of 1/15 s


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(console, "width", 400)  # rich wraps tables at 80 columns otherwise


def test_an_mp4_cut_after_its_header_is_truncated(make_noise_video, cut_video):
    path = cut_video(make_noise_video("cut.mp4", options=FASTSTART), 36)
    assert declared_facts(path) == {
        "format": "mov,mp4,m4a,3gp,3g2,mj2",
        "frames": 120,
        "duration": 4.8,
        "duration_from": "stream",
        "fps": 25.0,
    }
    suspect = probe_suspect(path)
    assert (suspect["findings"], suspect["cause"]) == (["frames", "duration"], "truncated")
    assert suspect["decoded"] == {"frames": 36, "fps": 25.0, "duration": 1.44}
    assert suspect["reason"].startswith(
        "demuxed 36 of the 120 frames the header declares; 36 frames at 25 fps span 1.44 s, the "
        "container declares 4.80 s (timeline squeezed 3.3x); the data ends at 1."
    )
    assert suspect["reason"].endswith(" s of the declared 4.80 s: cut file")


def test_an_avi_cut_after_its_header_is_truncated(make_noise_video, cut_video):
    path = cut_video(make_noise_video("cut.avi", codec="mpeg4"), 36)
    suspect = probe_suspect(path)
    # the header still counts 120 frames; FFmpeg re-estimates the stated duration from the data
    # left, so the declared length is the header's 120 frames / 25 fps
    assert suspect["declared"]["frames"] == 120 and suspect["findings"][0] == "frames"
    assert suspect["cause"] == "truncated"
    assert suspect["reason"].startswith("demuxed 36 of the 120 frames the header declares; ")
    assert suspect["reason"].endswith("; the data ends at 1.44 s of the declared 4.80 s: cut file")


def test_an_mkv_cut_after_its_header_is_truncated(make_noise_video, cut_video):
    path = cut_video(make_noise_video("cut.mkv"), 36)
    suspect = probe_suspect(path)
    # Matroska counts no frames; its track's DURATION tag still says 4.8 s
    assert suspect["declared"]["frames"] is None
    assert suspect["declared"]["duration_from"] == "stream tag"
    assert (suspect["findings"], suspect["cause"]) == (["duration"], "truncated")
    assert suspect["reason"].startswith(
        "36 frames at 25 fps span 1.44 s, the container declares 4.80 s (timeline squeezed 3.3x)"
    )


def test_an_mpeg_ts_cut_inside_a_packet_is_truncated(make_noise_video):
    path = make_noise_video("cut.ts")
    with open(path, "r+b") as file:
        file.truncate(200 * 188 + 100)
    suspect = probe_suspect(path)
    assert suspect["declared"]["ts_partial_packet"] is True
    assert (suspect["findings"], suspect["cause"]) == (["ts-packet"], "truncated")
    assert suspect["reason"] == "the file ends inside a 188-byte MPEG-TS packet (cut)"
    # the documented limit: a transport stream declares no length, so a cut between two packets
    # leaves nothing to compare
    with open(path, "r+b") as file:
        file.truncate(200 * 188)
    assert probe_suspect(path) is None


def test_null_frames_in_an_avi_squeeze_its_timeline(make_noise_video):
    # OpenCV's tree.avi: the header counts every tick, the decoders skip the empty chunks
    path = make_noise_video("nulls.avi", n_frames=40, fps=15, codec="mpeg4", pts=GAPS)
    suspect = probe_suspect(path)
    assert suspect["declared"]["frames"] == 235
    assert (suspect["findings"], suspect["cause"]) == (["frames", "duration"], "dropped-frames")
    assert suspect["reason"] == (
        "demuxed 40 of the 235 frames the header declares; 40 frames at 15 fps span 2.67 s, the "
        "container declares 15.67 s (timeline squeezed 5.9x); the data spans the declared "
        "15.67 s: frames missing in between (null frames, variable frame rate, undecodable "
        "frames)"
    )


def test_timestamps_wider_than_the_declared_rate_squeeze_an_mkv(make_noise_video):
    path = make_noise_video("squeezed.mkv", n_frames=40, fps=15, pts=GAPS)
    suspect = probe_suspect(path)
    assert suspect["declared"]["fps"] == 15.0 and suspect["declared"]["duration"] == 15.667
    assert (suspect["findings"], suspect["cause"]) == (["duration"], "dropped-frames")
    assert "(timeline squeezed 5.9x)" in suspect["reason"]


@pytest.mark.parametrize(
    "name, options",
    [
        ("a.mp4", {}),
        ("b.mp4", {"options": FASTSTART}),
        ("c.avi", {"codec": "mpeg4"}),
        ("d.mkv", {}),
        ("e.ts", {}),
        ("f.avi", {"codec": "mjpeg"}),
        # evenly spaced wide timestamps: a low constant rate, which MP4 derives from them
        ("g.mp4", {"n_frames": 40, "fps": 15, "pts": GAPS}),
    ],
)
def test_intact_videos_are_not_suspect(make_noise_video, name, options):
    assert probe_suspect(make_noise_video(name, **options)) is None


def test_frame_folders_and_unreadable_files_declare_nothing(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    for path in (tmp_path / "frames", tmp_path / "junk.mp4"):
        assert declared_facts(path) is None and probe_suspect(path) is None


def test_the_tolerance_is_two_frames_or_one_percent():
    declared = {"frames": 100, "duration": 4.0, "fps": 25.0}
    assert (tolerance(100), tolerance(1000), tolerance(1001)) == (2, 10, 11)
    assert find_suspect(declared, {"frames": 98, "fps": 25.0}) is None
    assert find_suspect(declared, {"frames": 102, "fps": 25.0}) is None
    assert find_suspect(declared, {"frames": 97, "fps": 25.0})["findings"] == [
        "frames",
        "duration",
    ]
    long = {"frames": 1000, "duration": 40.0, "fps": 25.0}
    assert find_suspect(long, {"frames": 990, "fps": 25.0}) is None
    assert find_suspect(long, {"frames": 989, "fps": 25.0}) is not None
    assert find_suspect(None, {"frames": 5, "fps": 25.0}) is None
    # no fps: only the header's frame count is compared
    assert find_suspect(declared, {"frames": 100, "fps": None}) is None


def test_more_frames_than_declared_stretch_the_timeline():
    suspect = find_suspect(
        {"frames": 100, "duration": 4.0, "fps": 25.0}, {"frames": 150, "fps": 25}
    )
    assert suspect["reason"] == (
        "decoded 150 frames, the header declares 100; 150 frames at 25 fps span 6.00 s, the "
        "container declares 4.00 s (timeline stretched 1.5x)"
    )
    assert suspect["decoded"] == {"frames": 150, "fps": 25, "duration": 6.0}
    # the packets span the declared length and are not fewer: no cause is guessed
    explained = explain(suspect, {"packets": 150, "span": 4.0})
    assert explained["cause"] is None and explained["reason"] == suspect["reason"]


def test_check_warns_about_suspect_videos_before_extraction(
    make_noise_video, cut_video, tmp_path, capsys
):
    make_noise_video("videos/good.mp4", n_frames=40)
    cut_video(make_noise_video("videos/cut.mp4", options=FASTSTART), 36)
    make_noise_video("videos/nulls.avi", n_frames=40, fps=15, codec="mpeg4", pts=GAPS)
    args = ["check", "--dataset", "folder", "--root", str(tmp_path / "videos")]
    assert run([*args, "--probe", "all"]) == 0  # warnings: extraction stores them by default
    out = capsys.readouterr().out
    assert "suspect-video" in out
    # the frame count check takes anyway (decord's index), as extraction would decode
    assert "cut.mp4: suspect video (truncated): decoded 36 of the 120 frames" in out
    assert "nulls.avi: suspect video (dropped-frames): decoded 40 of the 235 frames" in out
    assert "good.mp4" not in out
    assert run([*args, "--probe", "none"]) == 0
    assert "no problems found" in capsys.readouterr().out
