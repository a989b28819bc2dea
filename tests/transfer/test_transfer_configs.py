"""The import/export config literals and the format registry agree (every YAML under configs/ is
validated by tests/config/test_every_config_file.py)."""

from __future__ import annotations

import typing

import pytest

from wsvad.errors import WsvadError
from wsvad.transfer.config import ExportConfig, ImportConfig
from wsvad.transfer.formats import get_format, list_formats


def test_format_literals_match_registry():
    assert sorted(typing.get_args(ImportConfig.model_fields["format"].annotation)) == list_formats()
    exportable = [n for n in list_formats() if get_format(n).export_names is not None]
    assert sorted(typing.get_args(ExportConfig.model_fields["format"].annotation)) == exportable
    with pytest.raises(
        WsvadError,
        match=(
            "unknown feature format 'npz'; known: crops-per-file, rtfm, sultani-c3d, vggish, "
            "video-features"
        ),
    ):
        get_format("npz")
    with pytest.raises(WsvadError, match="--stream 'fps': expected a video_features output key"):
        get_format("video-features", "fps")
