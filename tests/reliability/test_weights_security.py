"""Weights never run code: the bundled Kinetics checkpoint is checked against its sha256 before it
is unpickled (and then only numpy arrays may be built); user files go through safetensors or
torch.load(weights_only=True); wrong keys or shapes are refused with the mismatch listed."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_ERROR, WsvadError
from wsvad.extract.backbones import i3d

SMALL = ["--resize", "short64", "--crops", "1", "--workers", "0", "--set", "crop_size=48"]


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def videos(make_video, tmp_path) -> Path:
    make_video("videos/v.mp4", n_frames=20)
    return tmp_path / "videos"


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_corrupted_copy_of_the_kinetics_checkpoint_is_refused(
    videos, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv(
        "WSVAD_CACHE_DIR", str(tmp_path / "cache")
    )  # no converted copy to fall back on
    copy = tmp_path / "i3d-kinetics-400.ckpt"
    shutil.copyfile(i3d.locate_checkpoint(), copy)
    with open(copy, "r+b") as fh:  # flip one byte in the middle
        fh.seek(copy.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    actual = hashlib.sha256(copy.read_bytes()).hexdigest()
    code = run(
        [
            "extract",
            "--dataset",
            "folder",
            "--root",
            str(videos),
            "--out",
            str(tmp_path / "store"),
            "--backbone",
            "i3d",
            "--weights",
            str(copy),
            *SMALL,
        ]
    )
    assert code == EXIT_ERROR
    assert _error_line(capsys) == (
        f"error: {copy}: sha256 mismatch (got {actual}, expected {i3d.CKPT_SHA256}); the "
        "file is corrupted or not the expected checkpoint, reinstall it"
    )
    assert not (tmp_path / "cache").exists()


def test_a_tampered_bundled_checkpoint_is_never_unpickled(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "i3d-kinetics-400.ckpt"
    evil.write_bytes(pickle.dumps({"params": _Payload(marker)}))
    monkeypatch.setenv("WSVAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(i3d, "locate_checkpoint", lambda: evil)
    with pytest.raises(
        WsvadError,
        match=rf"^{evil}: sha256 mismatch \(got [0-9a-f]{{64}}, expected {i3d.CKPT_SHA256}\)",
    ):
        i3d.load_i3d_state()
    assert not marker.exists()
    # even a file that matched the checksum could only build numpy arrays
    monkeypatch.setattr(i3d, "CKPT_SHA256", hashlib.sha256(evil.read_bytes()).hexdigest())
    with pytest.raises(
        WsvadError, match=rf"^{evil}: not a pickle of numpy arrays \(refusing to load posix\.mkdir"
    ):
        i3d.load_i3d_state()
    assert not marker.exists()


@pytest.mark.parametrize("backbone", ["c3d", "i3d_r50"])
def test_user_weights_that_would_run_code_are_refused(backbone, videos, tmp_path, capsys):
    import torch

    marker = tmp_path / "code-ran"
    weights = tmp_path / "model.pth"
    torch.save({"conv1.weight": _Payload(marker)}, weights)
    code = run(
        [
            "extract",
            "--dataset",
            "folder",
            "--root",
            str(videos),
            "--out",
            str(tmp_path / "store"),
            "--backbone",
            backbone,
            "--weights",
            str(weights),
            *SMALL,
        ]
    )
    assert code == EXIT_ERROR
    assert _error_line(capsys) == (
        f"error: {weights}: cannot read weights (UnpicklingError: Trying to load unsupported "
        "GLOBAL posix.mkdir whose module posix is blocked. The file holds Python objects, not "
        "only tensors; weights are read with torch.load(weights_only=True), which never runs "
        "code)"
    )
    assert not marker.exists()


def test_user_weights_with_wrong_keys_and_shapes_list_the_mismatch(videos, tmp_path, capsys):
    from safetensors.numpy import save_file

    weights = tmp_path / "c3d.safetensors"
    save_file(
        {
            "conv1.weight": np.zeros((8, 3, 3, 3, 3), np.float32),
            "conv1.bias": np.zeros(64, np.float32),
            "extra.weight": np.zeros(2, np.float32),
        },
        str(weights),
    )
    code = run(
        [
            "extract",
            "--dataset",
            "folder",
            "--root",
            str(videos),
            "--out",
            str(tmp_path / "store"),
            "--backbone",
            "c3d",
            "--weights",
            str(weights),
            *SMALL,
        ]
    )
    assert code == EXIT_ERROR
    line = _error_line(capsys)
    assert line.startswith(
        f"error: {weights}: not the expected weights; missing keys: conv2.weight, conv2.bias, "
        "conv3a.weight, conv3a.bias, conv3b.weight, conv3b.bias, conv4a.weight, conv4a.bias ...; "
    )
    assert line.endswith("wrong shapes: conv1.weight (8, 3, 3, 3, 3) != (64, 3, 3, 3, 3)")
