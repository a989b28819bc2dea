"""configs/evaluate/*.yaml validate; config mistakes fail with the key and the reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from wsvad.config import load_config
from wsvad.errors import WsvadError
from wsvad.evaluate.config import EvaluateConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "evaluate").glob("*.yaml"))


def test_there_are_evaluate_configs():
    assert {p.name for p in CONFIGS} >= {
        "ucf.yaml",
        "ucf_rtfm.yaml",
        "xd_rtfm.yaml",
        "shanghaitech.yaml",
    }


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_yaml_validates_and_comments_every_key(path):
    cfg = load_config(EvaluateConfig, path, flags={"run": "runs/x"})
    assert cfg.run == Path("runs/x")
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            assert "#" in line, f"{path.name}: key without a comment: {line!r}"
    # YAML 1.1 reads 1e-3 as a string: exponent floats must carry a dot (1.0e-3).
    assert not re.search(r":\s*-?\d+[eE]", path.read_text()), f"{path.name}: float without a dot"
    assert (
        isinstance(yaml.safe_load(path.read_text())["threshold"], float)
        if "threshold" in path.read_text()
        else True
    )


def test_rtfm_config_selects_rtfm_alignment():
    cfg = load_config(EvaluateConfig, next(p for p in CONFIGS if p.name == "ucf_rtfm.yaml"))
    assert (cfg.alignment, cfg.stride, cfg.snippet_len) == ("rtfm", 16, 16)


def test_unknown_key_and_bad_alignment_are_named():
    with pytest.raises(WsvadError, match="command line: alignmnet: unknown key"):
        load_config(EvaluateConfig, None, sets=["alignmnet=rtfm", "run=r"])
    with pytest.raises(WsvadError, match="alignment: Input should be 'true-frames' or 'rtfm'"):
        load_config(EvaluateConfig, None, flags={"run": "r", "alignment": "frames"})


def test_run_and_scores_together_are_refused():
    with pytest.raises(WsvadError, match="give either --run or --scores, not both"):
        load_config(EvaluateConfig, None, flags={"run": "r", "scores": "s.npz"})
