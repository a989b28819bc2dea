"""`wsvad extract` / `info` / `backbones` through the CLI, a real SIGKILL + resume, and a dask
cluster."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from wsvad.cli import run
from wsvad.errors import EXIT_PARTIAL
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

SMALL = ["--backbone", "random3d", "--resize", "short64", "--set", "crop_size=48"]


def extract_args(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "extract",
        "--dataset",
        "folder",
        "--root",
        str(root),
        "--out",
        str(out),
        *SMALL,
        *extra,
    ]


def assert_same_store(a: Path, b: Path) -> None:
    left, right = FeatureStore.open(a), FeatureStore.open(b)
    assert left.video_ids() == right.video_ids()
    for vid in left.video_ids():
        np.testing.assert_array_equal(left.read(vid), right.read(vid))
        strip = lambda attrs: {k: v for k, v in attrs.items() if k != "source_mtime"}  # noqa: E731
        assert strip(left.video_attrs(vid)) == strip(right.video_attrs(vid))


def test_every_option_states_its_default(capsys):
    assert run(["extract", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--dataset",
        "--crops",
        "--workers",
        "--threads-per-worker",
        "--scheduler",
        "--decoder",
        "--tail",
        "--resize",
        "--fps",
        "--dtype",
        "--split",
        "--overwrite",
        "--skip-invalid",
        "--set",
    ):
        after = text.split(option, 1)[1].split(" --", 1)[0]
        assert "Default" in after, f"{option} help lacks its default: {after!r}"


def test_cli_exit_3_names_the_failed_videos_and_info_lists_them(tmp_path, make_video, capsys):
    make_video("v/good.mp4", n_frames=20)
    (tmp_path / "v" / "broken.mp4").write_bytes(b"")
    code = run(extract_args(tmp_path / "v", tmp_path / "store", "--workers", "0", "--crops", "1"))
    out = capsys.readouterr()
    assert code == EXIT_PARTIAL
    assert "1 extracted, 0 already complete, 1 failed" in out.out
    assert "broken: DecodeError:" in out.err and "broken.mp4: empty file (0 bytes)" in out.err
    assert run(["info", str(tmp_path / "store")]) == 0
    info = capsys.readouterr().out
    assert "videos done" in info and "random3d" in info and "[T, 1, 64] float32" in info
    assert re.search(r"rows are\s+│ snippets of 16 frames", info)
    assert "broken [decord,av] DecodeError" in info
    assert run(["info", str(tmp_path / "nowhere")]) == 1
    assert "nowhere: no such feature store" in capsys.readouterr().err


def test_cli_bad_option_values_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "v").mkdir()
    assert run(extract_args(tmp_path / "v", tmp_path / "s", "--tail", "wrap")) == 1
    err = capsys.readouterr().err
    assert err == "error: command line: tail: should be 'drop', 'pad' or 'loop' (got 'wrap')\n"
    assert run(extract_args(tmp_path / "v", tmp_path / "s", "--device", "gpu0")) == 1
    assert "error: command line: device: expected cpu, cuda or cuda:N (got 'gpu0')" in (
        capsys.readouterr().err
    )


def test_backbones_lists_the_registry(capsys):
    assert run(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "random3d" in out and "[64]" in out and "short256" in out


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, make_video):
    for i in range(6):
        make_video(f"v/clip{i}.mp4", n_frames=150, size=(96, 72), seed=i)
    base = extract_args(tmp_path / "v", tmp_path / "killed", "--workers", "0", "--crops", "10")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsvad", *base],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    videos = tmp_path / "killed" / "videos"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if videos.is_dir() and len(list(videos.iterdir())) >= 2:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the extraction finished before it could be killed"
    done_at_kill = len(list(videos.iterdir()))
    assert 2 <= done_at_kill < 6
    assert run(base) == 0  # resumes: stale lock of the dead pid, .tmp debris, remaining videos
    assert not tmp_entries(tmp_path / "killed")
    assert (
        run(extract_args(tmp_path / "v", tmp_path / "clean", "--workers", "0", "--crops", "10"))
        == 0
    )
    assert_same_store(tmp_path / "killed", tmp_path / "clean")


def test_local_dask_cluster_gives_the_inline_result(tmp_path, make_video):
    make_video("v/a.mp4", n_frames=40)
    make_video("v/long.mp4", n_frames=150, seed=3)
    (tmp_path / "v" / "broken.mp4").write_bytes(b"junk")
    common = [
        "--crops",
        "1",
        "--snippet-len",
        "16",
        "--stride",
        "8",
        "--set",
        "batch_clips=1",
        "--set",
        "piece_snippets=6",
    ]
    assert (
        run(extract_args(tmp_path / "v", tmp_path / "inline", "--workers", "0", *common))
        == EXIT_PARTIAL
    )
    code = run(
        extract_args(
            tmp_path / "v",
            tmp_path / "dask",
            "--workers",
            "2",
            "--threads-per-worker",
            "1",
            *common,
        )
    )
    assert code == EXIT_PARTIAL
    assert_same_store(
        tmp_path / "dask", tmp_path / "inline"
    )  # "long" went through pieces on 2 workers
    assert sorted(FeatureStore.open(tmp_path / "dask").failures()) == ["broken"]
