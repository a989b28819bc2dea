"""The evaluate configs select what they say; config mistakes fail with the key and the reason
(every YAML under configs/ is validated by tests/config/test_every_config_file.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsvad.config import load_config
from wsvad.errors import WsvadError
from wsvad.evaluate.config import EvaluateConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "evaluate").glob("*.yaml"))


def test_rtfm_config_selects_rtfm_alignment():
    cfg = load_config(EvaluateConfig, next(p for p in CONFIGS if p.name == "ucf_rtfm.yaml"))
    assert (cfg.alignment, cfg.stride, cfg.snippet_len) == ("rtfm", 16, 16)


def test_unknown_key_and_bad_alignment_are_named():
    with pytest.raises(WsvadError, match="command line: alignmnet: unknown key"):
        load_config(EvaluateConfig, None, sets=["alignmnet=rtfm", "run=r"])
    with pytest.raises(
        WsvadError, match="alignment: should be 'true-frames', 'rtfm' or 'rtfm-ucf'"
    ):
        load_config(EvaluateConfig, None, flags={"run": "r", "alignment": "frames"})


def test_run_and_scores_together_are_refused():
    with pytest.raises(WsvadError, match="give either --run or --scores, not both"):
        load_config(EvaluateConfig, None, flags={"run": "r", "scores": "s.npz"})
