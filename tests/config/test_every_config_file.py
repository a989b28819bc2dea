"""Every YAML under configs/ validates against the model of its stage and comments its keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wsvad.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _model_for(stage: str):
    if stage == "extract":
        from wsvad.extract.config import ExtractConfig

        return ExtractConfig
    if stage == "train":
        from wsvad.train.config import TrainConfig

        return TrainConfig
    if stage == "evaluate":
        from wsvad.evaluate.config import EvaluateConfig

        return EvaluateConfig
    if stage == "synth":
        from wsvad.data.synth.config import SynthConfig

        return SynthConfig
    if stage == "import":
        from wsvad.transfer.config import ImportConfig

        return ImportConfig
    if stage == "export":
        from wsvad.transfer.config import ExportConfig

        return ExportConfig
    raise AssertionError(f"configs/{stage}/ has no config model: add it to this test")


ALL = sorted(CONFIGS.rglob("*.yaml"))


def test_there_are_configs_for_every_stage():
    assert {p.parent.name for p in ALL} >= {
        "extract",
        "train",
        "evaluate",
        "synth",
        "import",
        "export",
    }


# Required fields (paths that only the command line knows) are filled with placeholders so the
# rest of the file is validated; a key the model does not know still fails.
_PLACEHOLDERS = {
    "dataset": "ucf",
    "root": "data",
    "out": "out",
    "store": "features",
    "run": "runs/x",
    "list": "a.list",
    "features_root": "feats",
    "format": "rtfm",
    "scores": "scores.npz",
}


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(CONFIGS)) for p in ALL])
def test_config_file_validates(path):
    model = _model_for(path.parent.name)
    data = yaml.safe_load(path.read_text()) or {}
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    flags = {key: _PLACEHOLDERS.get(key, "x") for key in required if key not in data}
    if "dataset" in data and "root" in model.model_fields and "root" not in data:
        flags["root"] = _PLACEHOLDERS[
            "root"
        ]  # --dataset needs --root: the user gives it on the command line
    load_config(model, path, flags=flags)


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(CONFIGS)) for p in ALL])
def test_config_keys_are_commented(path):
    """A comment on every top-level key (video_features' good habit): configs are documentation."""
    bare = [
        line.split(":")[0]
        for line in path.read_text().splitlines()
        if line
        and not line.startswith((" ", "#", "-"))
        and ":" in line
        and "#" not in line
        and not line.rstrip().endswith(":")  # a mapping header: its children carry the comments
    ]
    assert not bare, f"{path.name}: keys without a comment: {bare}"
