"""``device`` (cpu, cuda, cuda:N) is validated the same way by every stage's config."""

from __future__ import annotations

import pytest

from wsvad.cli import run
from wsvad.config import load_config
from wsvad.errors import WsvadError
from wsvad.evaluate.config import ScoreConfig
from wsvad.extract.config import ExtractConfig
from wsvad.train.config import TrainConfig

REQUIRED = {
    TrainConfig: {"store": "s.zarr", "out": "run"},
    ScoreConfig: {"video": "v.mp4", "run": "run"},
    ExtractConfig: {"root": "videos", "out": "s.zarr"},
}


@pytest.mark.parametrize("model", list(REQUIRED), ids=lambda m: m.__name__)
@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:12"])
def test_torch_device_strings_are_accepted(model, device):
    assert load_config(model, flags={**REQUIRED[model], "device": device}).device == device


@pytest.mark.parametrize("model", list(REQUIRED), ids=lambda m: m.__name__)
@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "CPU", "cpu:0", " cuda"])
def test_a_bad_device_is_one_line_naming_the_key(model, device):
    with pytest.raises(WsvadError) as info:
        load_config(model, flags={**REQUIRED[model], "device": device})
    assert str(info.value) == f"command line: device: expected cpu, cuda or cuda:N (got {device!r})"


def test_a_bad_device_in_a_yaml_file_names_the_file(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("store: s.zarr\nout: run\ndevice: gpu0\n")
    with pytest.raises(WsvadError) as info:
        load_config(TrainConfig, path)
    assert str(info.value) == f"{path}: device: expected cpu, cuda or cuda:N (got 'gpu0')"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--store", "s.zarr", "--out", "run", "--device", "gpu"],
        ["score", "v.mp4", "--run", "run", "--device", "gpu"],
    ],
    ids=["train", "score"],
)
def test_the_cli_stops_at_a_bad_device_with_exit_1(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # nothing exists there: the device is refused before any file
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert err == "error: command line: device: expected cpu, cuda or cuda:N (got 'gpu')\n"
