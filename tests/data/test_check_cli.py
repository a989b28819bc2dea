"""`wsvad check` and `wsvad datasets`: problem tables, frame-count probes, exit codes; the stage
gate."""

from __future__ import annotations

import pytest

from wsvad.cli import run
from wsvad.cli.app import console
from wsvad.data import load_dataset
from wsvad.data.check import usable_records
from wsvad.data.framecount import declared_frame_count, frame_count
from wsvad.errors import WsvadError

ANN = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(console, "width", 400)  # rich wraps tables at 80 columns otherwise


@pytest.fixture
def tiny_ucf(make_video, tmp_path):
    """Four real 40-frame videos in the UCF-Crime layout; returns a function writing the
    annotation."""
    for rel in (
        "Abuse/Abuse001_x264.mp4",
        "Abuse/Abuse028_x264.mp4",
        "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4",
        "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4",
    ):
        make_video(f"ucf/{rel}", n_frames=40, size=(64, 48))
    root = tmp_path / "ucf"
    (root / "Anomaly_Train.txt").write_text(
        "Abuse/Abuse001_x264.mp4\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n"
    )
    (root / "Anomaly_Test.txt").write_text(
        "Abuse/Abuse028_x264.mp4\nTesting_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4\n"
    )

    def annotate(start: int, end: int):
        (root / ANN).write_text(
            f"Abuse028_x264.mp4  Abuse  {start}  {end}  -1  -1  \nNormal_Videos_003_x264.mp4  "
            "Normal  -1  -1  -1  -1  \n"
        )
        return root

    return annotate


def test_check_clean_layout_exits_0(tiny_ucf, capsys):
    root = tiny_ucf(5, 20)
    assert run(["check", "--dataset", "ucf", "--root", str(root), "--probe", "all"]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out
    assert "│ train │      2 │      1 │        1 │          0 │" in out
    assert "classes: Normal, Abuse, Arrest," in out


def test_check_interval_past_the_end_is_a_warning(tiny_ucf, capsys):
    root = tiny_ucf(30, 40)  # inclusive end 40 -> [30, 41) on a 40-frame video
    assert run(["check", "--dataset", "ucf", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "interval-past-end" in out
    assert (
        "Abuse/Abuse028_x264.mp4: interval [30, 41) ends 1 frame(s) past the video (40 frames, "
        "decord); clipped when labelling" in out
    )


def test_check_errors_give_a_table_and_exit_1(tiny_ucf, capsys):
    root = tiny_ucf(50, 60)
    (root / "Anomaly_Train.txt").write_text(
        "Abuse/Abuse001_x264.mp4\nArrest/Arrest001_x264.mp4\nArrest/Arrest002_x264.mp4\n"
    )
    assert run(["check", "--dataset", "ucf", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    rows = [line for line in captured.out.splitlines() if "missing-video" in line]
    assert any("│ 2 " in row for row in rows)  # the summary row counts both
    assert (
        "Abuse/Abuse028_x264.mp4: interval [50, 61) starts after the last frame (40 frames, decord)"
        in captured.out
    )
    assert "3 error(s), 0 warning(s)" in captured.err


def test_check_probe_all_finds_unreadable_videos(tiny_ucf, capsys):
    root = tiny_ucf(5, 20)
    (root / "Abuse" / "Abuse001_x264.mp4").write_bytes(b"this is not a video")
    assert run(["check", "--dataset", "ucf", "--root", str(root), "--probe", "none"]) == 0
    assert run(["check", "--dataset", "ucf", "--root", str(root), "--probe", "all"]) == 1
    out = capsys.readouterr().out
    assert (
        "unreadable-video" in out
        and "Abuse/Abuse001_x264.mp4: cannot read the frame count (" in out
    )


def test_check_usage_errors_are_one_line(tmp_path, capsys):
    assert run(["check", "--dataset", "kinetics", "--root", str(tmp_path)]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "error: unknown dataset 'kinetics'; known: folder, shanghaitech, synthetic, ucf, xd"
    )
    assert run(["check", "--dataset", "ucf", "--root", str(tmp_path / "nope")]) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path / 'nope'}: dataset root does not exist or is not a directory"
    )
    assert (
        run(["check", "--dataset", "folder", "--root", str(tmp_path), "--annotations", "a.txt"])
        == 1
    )
    assert (
        capsys.readouterr().err.strip()
        == "error: dataset 'folder' does not take option(s) annotations; it takes labels"
    )
    assert run(["check", "--dataset", "ucf", "--root", str(tmp_path), "--probe", "some"]) == 1
    assert (
        capsys.readouterr().err.strip() == "error: --probe 'some': must be annotated, all or none"
    )


def test_datasets_lists_every_adapter(capsys):
    assert run(["datasets"]) == 0
    out = capsys.readouterr().out
    for name, hint in (
        ("ucf", "Anomaly_Train.txt"),
        ("shanghaitech", "SH_Train.txt"),
        ("xd", "annotations.txt"),
        ("folder", "labels.csv"),
        ("synthetic", "synth.json"),
    ):
        assert any(line.startswith(f"│ {name} ") for line in out.splitlines()) and hint in out


def test_probe_frame_count_and_the_stage_gate(tiny_ucf, tmp_path):
    root = tiny_ucf(5, 20)
    assert frame_count(root / "Abuse" / "Abuse028_x264.mp4") == (40, "decord")
    assert declared_frame_count(root / "Abuse" / "Abuse028_x264.mp4") == (40, "header")
    (tmp_path / "frames").mkdir()
    for i in range(3):
        (tmp_path / "frames" / f"{i:04d}.jpg").touch()
    (tmp_path / "frames" / "._0001.jpg").touch()  # a macOS resource fork is not a frame
    assert frame_count(tmp_path / "frames") == (3, "images")
    assert len(usable_records(load_dataset("ucf", root))) == 4
    (root / "Anomaly_Train.txt").write_text("Abuse/Abuse001_x264.mp4\nArrest/Arrest001_x264.mp4\n")
    index = load_dataset("ucf", root)
    with pytest.raises(
        WsvadError,
        match=(
            rf"^{root}: 1 dataset error\(s\) \(1 missing-video\); see `wsvad check --dataset ucf "
            rf"--root {root}`, or skip the affected videos$"
        ),
    ):
        usable_records(index)
    assert [r.video_id for r in usable_records(index, skip_bad=True)] == [
        "Abuse001_x264",
        "Abuse028_x264",
        "Normal_Videos_003_x264",
    ]
