"""The config layers (defaults < YAML < flags < --set) and their one-line error messages."""

from __future__ import annotations

from typing import Literal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from wsvad.config import config_hash, load_config, parse_sets, save_config
from wsvad.errors import WsvadError


class Optim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float = 1e-3
    name: Literal["adam", "sgd"] = "adam"


class Demo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crops: Literal[1, 5, 10] = 10
    workers: int = Field(1, ge=1)
    optim: Optim = Optim()


def test_yaml_float_without_dot_is_coerced(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("optim:\n  lr: 1e-4\n")  # YAML 1.1 reads this as the string '1e-4'
    assert yaml.safe_load(cfg_file.read_text())["optim"]["lr"] == "1e-4"
    assert load_config(Demo, cfg_file).optim.lr == pytest.approx(1e-4)


def test_precedence_defaults_yaml_flags_sets(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("crops: 5\nworkers: 2\noptim: {lr: 0.5}\n")
    cfg = load_config(
        Demo,
        cfg_file,
        flags={"workers": 3, "crops": None},
        sets=["optim.lr=0.25", "optim.name=sgd"],
    )
    assert (cfg.crops, cfg.workers, cfg.optim.lr, cfg.optim.name) == (5, 3, 0.25, "sgd")


def test_unknown_key_names_file_and_key(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("n_crop: 10\n")
    with pytest.raises(WsvadError, match=r"c\.yaml: n_crop: unknown key"):
        load_config(Demo, cfg_file)


def test_out_of_range_and_wrong_type_are_named(tmp_path):
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text("crops: 8\nworkers: 0\n")
    with pytest.raises(WsvadError) as info:
        load_config(Demo, cfg_file)
    message = str(info.value)
    assert "bad.yaml: crops:" in message and "(got 8)" in message
    assert "bad.yaml: workers: should be greater than or equal to 1 (got 0)" in message


def test_malformed_yaml_reports_line(tmp_path):
    cfg_file = tmp_path / "broken.yaml"
    cfg_file.write_text("crops: 10\noptim: [unclosed\n")
    with pytest.raises(WsvadError, match=r"broken\.yaml: line \d+: malformed YAML"):
        load_config(Demo, cfg_file)


def test_non_mapping_yaml_refused(tmp_path):
    cfg_file = tmp_path / "list.yaml"
    cfg_file.write_text("- 1\n- 2\n")
    with pytest.raises(WsvadError, match="must be a mapping"):
        load_config(Demo, cfg_file)


def test_missing_file(tmp_path):
    with pytest.raises(WsvadError, match="cannot read config"):
        load_config(Demo, tmp_path / "nope.yaml")


def test_bad_set_syntax():
    with pytest.raises(WsvadError, match="expected key.path=value"):
        parse_sets(["optim.lr"])
    assert parse_sets(["a.b=3", "a.c=x", "d=1.0e-3"]) == {"a": {"b": 3, "c": "x"}, "d": 1e-3}


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(Demo, None, flags={"crops": 5, "optim.lr": 0.1})
    save_config(cfg, tmp_path / "out" / "config.yaml")
    assert load_config(Demo, tmp_path / "out" / "config.yaml") == cfg
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})


_keys = st.sampled_from(["crops", "workers", "optim", "lr", "typo", "optim.lr"])
_values = st.one_of(
    st.integers(-5, 20), st.floats(allow_nan=False), st.text(max_size=5), st.booleans(), st.none()
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=4))
def test_any_config_dict_validates_or_fails_with_one_line_per_problem(tmp_path_factory, data):
    """Property: arbitrary YAML mappings either validate or raise WsvadError naming the file and a
    key."""
    cfg_file = tmp_path_factory.mktemp("cfg") / "p.yaml"
    cfg_file.write_text(yaml.safe_dump(data))
    try:
        cfg = load_config(Demo, cfg_file)
    except WsvadError as exc:
        lines = str(exc).splitlines()
        assert lines and all(line.startswith(f"{cfg_file}: ") for line in lines)
        assert all(line.split(": ")[1] for line in lines)  # a key path is named
    else:
        assert cfg.crops in (1, 5, 10) and cfg.workers >= 1
