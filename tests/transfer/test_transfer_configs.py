"""Every import/export YAML validates; the config literals and the format registry agree."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from wsvad.config import load_config
from wsvad.errors import WsvadError
from wsvad.transfer.config import ExportConfig, ImportConfig
from wsvad.transfer.formats import get_format, list_formats

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted((CONFIGS / "import").glob("*.yaml")), ids=lambda p: p.name)
def test_import_yaml_validates(path):
    cfg = load_config(
        ImportConfig, path, flags={"features_root": "feats", "root": "data", "out": "store"}
    )
    fmt = get_format(cfg.format, cfg.stream)
    assert fmt.name == cfg.format
    text = path.read_text()
    assert all(
        "#" in line for line in text.splitlines() if line.strip() and not line.startswith("  -")
    ), path


@pytest.mark.parametrize("path", sorted((CONFIGS / "export").glob("*.yaml")), ids=lambda p: p.name)
def test_export_yaml_validates(path):
    cfg = load_config(ExportConfig, path, flags={"store": "store", "out": "out"})
    assert get_format(cfg.format).export_names is not None


def test_yaml_files_exist():
    assert len(list((CONFIGS / "import").glob("*.yaml"))) >= 4
    assert len(list((CONFIGS / "export").glob("*.yaml"))) >= 2


def test_format_literals_match_registry():
    assert sorted(typing.get_args(ImportConfig.model_fields["format"].annotation)) == list_formats()
    exportable = [n for n in list_formats() if get_format(n).export_names is not None]
    assert sorted(typing.get_args(ExportConfig.model_fields["format"].annotation)) == exportable
    with pytest.raises(
        WsvadError,
        match="unknown feature format 'npz'; known: crops-per-file, rtfm, sultani-c3d, vggish, video-features",
    ):
        get_format("npz")
    with pytest.raises(WsvadError, match="--stream 'fps': expected a video_features output key"):
        get_format("video-features", "fps")
