"""A broken model, store or machine stops `wsvad extract` (exit 1, one line) and is never recorded
as a broken video (issue #18.1): each fault is injected while the second video of a resumed run is
extracted, after a first run stored one video and recorded one undecodable file."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_ERROR, EXIT_PARTIAL
from wsvad.extract import worker
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

SMALL = ["--backbone", "random3d", "--resize", "short64", "--crops", "1", "--workers", "0"]
SMALL += ["--set", "crop_size=48", "--set", "backbone_options.dim=16"]
RESUME = (
    "this is not the video's fault, so it is not recorded as failed and videos already complete "
    "are kept: {fix}, then run the same command to resume"
)


def extract(root: Path, out: Path) -> int:
    return run(["extract", "--dataset", "folder", "--root", str(root), "--out", str(out), *SMALL])


@pytest.fixture
def half_done(tmp_path, make_video, capsys):
    """A store holding ``a`` and the failure of ``garbage``; ``c`` is added for the next run."""
    root = tmp_path / "videos"
    make_video("videos/a.mp4", n_frames=20, size=(64, 48), seed=1)
    (root / "garbage.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"junk" * 200)
    out = tmp_path / "store"
    assert extract(root, out) == EXIT_PARTIAL
    make_video("videos/c.mp4", n_frames=20, size=(64, 48), seed=3)
    store = FeatureStore.open(out)
    before = (store.failures(), store.read("a"))
    assert sorted(before[0]) == ["garbage"]
    capsys.readouterr()
    return root, out, before


class Faulty:
    """The backbone, raising ``error`` on every forward pass (or returning a wrongly shaped
    output)."""

    def __init__(self, model, error: BaseException | None):
        self.model, self.error = model, error

    def __call__(self, batch):
        if self.error is not None:
            raise self.error
        return self.model(batch).view(-1, 7)  # a shape bug: 16 features are not a multiple of 7


def inject_into_forward(monkeypatch, error: BaseException | None) -> None:
    real = worker.get_model

    def faulty_model(cfg):
        model, spec = real(cfg)
        return Faulty(model, error), spec

    monkeypatch.setattr(worker, "get_model", faulty_model)


def assert_stopped_cleanly(out: Path, before, err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert lines == [f"error: {message}"], lines
    store = FeatureStore.open(out)
    assert store.failures() == before[0]  # the table of the first run, untouched
    assert store.video_ids() == ["a"]  # c neither stored nor failed
    np.testing.assert_array_equal(store.read("a"), before[1])
    assert not (out / ".lock").exists() and not tmp_entries(out)


FORWARD = "c.mp4: extraction stopped: "
CASES = {
    "MemoryError": (
        MemoryError(),
        "out of memory in the forward pass of backbone 'random3d' on cpu (MemoryError); "
        + RESUME.format(fix="free memory or lower batch_clips"),
    ),
    "CUDA out of memory": (
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        "out of memory in the forward pass of backbone 'random3d' on cpu (RuntimeError: CUDA out "
        "of memory. Tried to allocate 2.00 GiB); "
        + RESUME.format(fix="free memory or lower batch_clips"),
    ),
    "shape error": (
        None,
        "the forward pass of backbone 'random3d' on cpu raised an error (RuntimeError: shape "
        "'[-1, 7]' is invalid for input of size 32); "
        + RESUME.format(fix="fix the backbone or its options"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_failing_forward_pass_stops_the_run_and_blames_no_video(
    half_done, monkeypatch, capsys, case
):
    root, out, before = half_done
    error, message = CASES[case]
    inject_into_forward(monkeypatch, error)
    assert extract(root, out) == EXIT_ERROR
    assert_stopped_cleanly(out, before, capsys.readouterr().err, FORWARD + message)
    monkeypatch.undo()  # the machine is fixed: the same command resumes
    assert extract(root, out) == EXIT_PARTIAL
    assert FeatureStore.open(out).video_ids() == ["a", "c"]


def test_a_full_disk_under_the_store_stops_the_run(half_done, monkeypatch, capsys):
    import zarr

    root, out, before = half_done

    def no_space(self, key, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zarr.Array, "__setitem__", no_space)
    assert extract(root, out) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out}/.tmp/c.") and err.endswith(
        ": cannot write the feature store (No space left on device); videos already complete "
        "are kept: free space or fix permissions, then run the same command to resume"
    )
    assert_stopped_cleanly(out, before, err, err.removeprefix("error: "))


def test_out_of_memory_while_cropping_frames_stops_the_run(half_done, monkeypatch, capsys):
    root, out, before = half_done

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.2 GiB for an array with shape (16, 2160, 3840, 3)")

    monkeypatch.setattr(worker, "resize_frames", no_memory)
    assert extract(root, out) == EXIT_ERROR
    message = (
        "out of memory (MemoryError: Unable to allocate 1.2 GiB for an array with shape (16, "
        "2160, 3840, 3)); " + RESUME.format(fix="free memory or lower batch_clips")
    )
    assert_stopped_cleanly(out, before, capsys.readouterr().err, FORWARD + message)


def test_a_bug_outside_the_model_is_reported_as_a_bug(half_done, monkeypatch, capsys):
    root, out, before = half_done

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    # a ValueError used to pass for "this video cannot be decoded" and was retried with PyAV
    monkeypatch.setattr(worker, "video_attrs", bug)
    assert extract(root, out) == EXIT_ERROR
    message = (
        "an unexpected error (a bug in wsvad) (ValueError: operands could not be broadcast "
        "together); " + RESUME.format(fix="please report it")
    )
    assert_stopped_cleanly(out, before, capsys.readouterr().err, FORWARD + message)
