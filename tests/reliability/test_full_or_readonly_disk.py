"""A full disk and a read-only output directory, for real: small tmpfs mounts (root only; skipped
with the reason elsewhere). The run stops with one line naming the path, nothing incomplete is
listed as complete, and once space or write access is back the same command finishes the store."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_ERROR
from wsvad.pipeline.store import FeatureStore

FRAMES = {"a": 40, "b": 72, "c": 56}
ROWS = {vid: -(-n // 16) for vid, n in FRAMES.items()}


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size)`` -> a fresh tmpfs mount point of ``size`` (e.g. "1m"), unmounted
    afterwards."""
    mounts: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield mount
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _remount(point: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(point)], check=True)


@pytest.fixture
def videos(tmp_path, make_video) -> Path:
    for i, (vid, n) in enumerate(FRAMES.items()):
        make_video(f"videos/{vid}.mp4", n_frames=n, seed=i)
    return tmp_path / "videos"


def _errors(capsys) -> list[str]:
    """stderr without the progress lines (a log line per phase when stderr is not a terminal)
    and the line saying what a run resumes."""
    lines = capsys.readouterr().err.strip().splitlines()
    return [line for line in lines if not line.startswith(("extract: ", "resuming "))]


def _used(point: Path) -> int:
    st = os.statvfs(point)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_disk_full_mid_run_stops_clearly_and_resumes_once_space_is_back(
    videos, tmpfs, tmp_path, tiny_args, capsys, assert_complete_means_complete, assert_same_store
):
    slow = ["--workers", "0", "--set", "chunk_t=2", "--set", "batch_clips=1"]
    # measure what a store holding only the first video takes, then leave exactly that much (+ one
    # page) free
    only_a = tmp_path / "only-a"
    only_a.mkdir()
    (only_a / "a.mp4").write_bytes((videos / "a.mp4").read_bytes())
    probe = tmpfs("2m")
    assert run(tiny_args(only_a, probe / "store", *slow)) == 0
    needed = _used(probe) + 4096
    disk = tmpfs("2m")
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - needed))
    out = disk / "store"
    capsys.readouterr()
    assert run(tiny_args(videos, out, *slow)) == EXIT_ERROR
    errors = _errors(capsys)
    assert len(errors) == 1 and errors[0].startswith(f"error: {out}/.tmp/b."), errors
    assert errors[0].endswith(
        ": cannot write the feature store (No space left on device); videos already complete "
        "are kept: free space or fix permissions, then run the same command to resume"
    )
    assert assert_complete_means_complete(out, ROWS) == ["a"]
    assert FeatureStore.open(out).failures() == {}  # a full disk is not the videos' fault

    filler.unlink()
    assert run(tiny_args(videos, out, *slow)) == 0
    reference = tmp_path / "reference"
    assert run(tiny_args(videos, reference, *slow)) == 0
    assert_same_store(out, reference)


def test_read_only_output_directory_is_named(videos, tmpfs, tiny_args, capsys):
    disk = tmpfs("1m")
    _remount(disk, "ro")
    assert run(tiny_args(videos, disk / "store", "--workers", "0")) == EXIT_ERROR
    err = "\n".join(_errors(capsys))
    assert err == f"error: {disk / 'store'}: cannot create store directory: Read-only file system"
    assert list(disk.iterdir()) == []


def test_store_that_became_read_only_is_refused_then_resumed(
    videos, tmpfs, tmp_path, tiny_args, capsys, snapshot
):
    disk = tmpfs("1m")
    out = disk / "store"
    first = tmp_path / "first"
    first.mkdir()
    (first / "a.mp4").write_bytes(
        (videos / "a.mp4").read_bytes()
    )  # the dataset grows after the first run
    assert run(tiny_args(first, out, "--workers", "0")) == 0
    before = snapshot(out)
    _remount(disk, "ro")
    assert run(tiny_args(videos, out, "--workers", "0")) == EXIT_ERROR
    err = "\n".join(_errors(capsys))
    assert err == (
        f"error: {out / '.lock'}: cannot write the feature store (Read-only file system); videos "
        "already complete are kept: free space or fix permissions, then run the same command to "
        "resume"
    )
    assert snapshot(out).keys() == before.keys() == {"a"}
    _remount(disk, "rw")
    assert run(tiny_args(videos, out, "--workers", "0")) == 0
    assert FeatureStore.open(out).video_ids() == ["a", "b", "c"]
