"""Every YAML under configs/ validates against its stage's model, names things that exist, and
comments every value: configs are documentation. The one test of configs/ for every stage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from wsvad.config import load_config
from wsvad.data.synth.config import SynthConfig
from wsvad.detectors import detector_params_model, list_detectors
from wsvad.evaluate.config import EvaluateConfig
from wsvad.extract.backbones import list_backbones
from wsvad.extract.config import ExtractConfig, resolve_config
from wsvad.train.config import TrainConfig
from wsvad.transfer.config import ExportConfig, ImportConfig
from wsvad.transfer.formats import get_format

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL = sorted(CONFIGS.rglob("*.yaml"))


def _check_extract(cfg: ExtractConfig, text: str) -> None:
    assert cfg.backbone in list_backbones()
    if "backbone_options" not in text:  # resolving needs no weights file
        assert resolve_config(cfg).snippet_len in (16, 64)


def _check_train(cfg: TrainConfig, text: str) -> None:
    assert cfg.detector.name in list_detectors()
    detector_params_model(cfg.detector.name).model_validate(cfg.detector.params or {})


def _check_evaluate(cfg: EvaluateConfig, text: str) -> None:
    if "threshold" in yaml.safe_load(text):
        assert isinstance(yaml.safe_load(text)["threshold"], float)


def _check_import(cfg: ImportConfig, text: str) -> None:
    assert get_format(cfg.format, cfg.stream).name == cfg.format


def _check_export(cfg: ExportConfig, text: str) -> None:
    assert get_format(cfg.format).export_names is not None


def _no_check(cfg, text: str) -> None:
    """The synth config names nothing that a registry must know."""


# configs/<stage>/ -> its model, the options its files leave to the command line (as the docs'
# examples give them: they must override the file), and what else the file must get right.
STAGES = {
    "extract": (ExtractConfig, {}, _check_extract),
    "train": (TrainConfig, {"store": "features", "out": "out"}, _check_train),
    "evaluate": (EvaluateConfig, {"run": "runs/x"}, _check_evaluate),
    "synth": (SynthConfig, {}, _no_check),
    "import": (
        ImportConfig,
        {"features_root": "feats", "root": "data", "out": "out"},
        _check_import,
    ),
    "export": (ExportConfig, {"store": "features", "out": "out"}, _check_export),
}

# Other required fields are filled with placeholders so the rest of the file is validated; a key
# the model does not know still fails.
_PLACEHOLDERS = {"dataset": "ucf", "root": "data", "out": "out", "list": "a.list", "format": "rtfm"}


def _command_line_flags(stage: str, data: dict) -> dict[str, str]:
    model, flags, _ = STAGES[stage]
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    flags = {key: _PLACEHOLDERS.get(key, "x") for key in required if key not in data} | flags
    if "dataset" in data and "root" in model.model_fields and "root" not in data:
        flags["root"] = _PLACEHOLDERS["root"]  # --dataset needs --root, given on the command line
    return flags


def _lines_without_a_comment(text: str) -> list[str]:
    """Lines that give a value (``key: value`` or a list item) without a ``#`` comment. A mapping
    header (``bags:`` alone) needs none: its children carry the comments."""
    return [
        line
        for line in text.splitlines()
        if line.strip()
        and not line.lstrip().startswith("#")
        and not line.rstrip().endswith(":")
        and "#" not in line
    ]


def test_there_are_configs_for_every_stage():
    assert {p.parent.name for p in ALL} == set(STAGES)
    assert {p.name for p in (CONFIGS / "evaluate").glob("*.yaml")} >= {
        "ucf.yaml",
        "ucf_rtfm.yaml",
        "xd_rtfm.yaml",
        "shanghaitech.yaml",
    }
    assert len(list((CONFIGS / "import").glob("*.yaml"))) >= 4
    assert len(list((CONFIGS / "export").glob("*.yaml"))) >= 2


@pytest.mark.parametrize("path", ALL, ids=[str(p.relative_to(CONFIGS)) for p in ALL])
def test_config_file_validates_and_comments_every_value(path):
    model, _, check = STAGES[path.parent.name]
    text = path.read_text()
    flags = _command_line_flags(path.parent.name, yaml.safe_load(text) or {})
    cfg = load_config(model, path, flags=flags)
    for key, value in flags.items():  # the command line wins over the file
        assert str(getattr(cfg, key)) == value, key
    check(cfg, text)
    bare = _lines_without_a_comment(text)
    assert not bare, f"{path.name}: values without a comment: {bare}"
    # YAML 1.1 reads 1e-3 as a string: exponent floats must carry a dot (1.0e-3).
    assert not re.search(r":\s*-?\d+[eE]", text), f"{path.name}: float without a dot"


def test_the_comment_rule_finds_bare_values_and_list_items():
    text = (
        "# a header comment\n"
        "lr: 1.0e-3   # documented\n"
        "bags:\n"
        "  count: 32\n"
        "lists:       # published lists\n"
        "  - {path: a.list, split: train}\n"
        "  - {path: b.list, split: test}  # the test list\n"
    )
    assert _lines_without_a_comment(text) == ["  count: 32", "  - {path: a.list, split: train}"]
