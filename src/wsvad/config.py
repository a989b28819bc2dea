"""Typed configs: defaults in code < YAML file < named CLI flags < repeated ``--set key=value``.

Every stage declares a pydantic model with ``extra="forbid"``; this module is the only place
where the layers are merged, so that a typo or a wrong type fails at load time with the key and
the file named. Field types that several stages share (``Device``) are defined here once.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from wsvad.atomic import write_text_atomic
from wsvad.errors import UsageError, WsvadError

ModelT = TypeVar("ModelT", bound=BaseModel)


def _check_device(value: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        # A custom error type keeps pydantic's "Value error, " prefix out of the one-line message.
        raise PydanticCustomError("device", "expected cpu, cuda or cuda:N")
    return value


# A torch device string, ``cpu``, ``cuda`` or ``cuda:N``: its form is checked when the config loads,
# not when the first tensor moves (whether CUDA is there is for the stage to check).
Device = Annotated[str, AfterValidator(_check_device)]


def _config_of_store(path: Path) -> dict[str, Any]:
    """``--config STORE``: the resolved config a feature store was made with (its attr
    ``config``), without ``overwrite`` so that repeating it resumes instead of wiping the store."""
    try:
        attrs = json.loads((path / "zarr.json").read_text(encoding="utf-8"))["attributes"]
        config = dict(attrs["config"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WsvadError(
            f"{path}: a folder given as --config must be a feature store made by `wsvad extract`"
        ) from exc
    config["overwrite"] = False
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    if Path(path).is_dir():
        return _config_of_store(Path(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise WsvadError(f"{path}: cannot read config ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise WsvadError(
            f"{path}: a config must be UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise WsvadError(f"{path}:{where}: malformed YAML: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WsvadError(
            f"{path}: a config must be a mapping of keys to values, got {type(data).__name__}"
        )
    return data


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = target
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def parse_sets(sets: list[str] | None) -> dict[str, Any]:
    """Turn ``["optim.lr=3e-4", "crops=5"]`` into a nested dict; values are parsed as YAML
    scalars."""
    merged: dict[str, Any] = {}
    for item in sets or []:
        if "=" not in item:
            raise WsvadError(f"--set {item!r}: expected key.path=value")
        key, raw = item.split("=", 1)
        if not key.strip():
            raise WsvadError(f"--set {item!r}: empty key")
        _set_dotted(merged, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    return merged


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# pydantic's wording -> the user's (what the key needs, never the model's class name)
_PLAIN_WORDS = {
    "extra_forbidden": "unknown key",
    "missing": "required, but not given",
    "model_type": "expected a section of keys (key: {name: value}), not a single value",
    "dict_type": "expected a section of keys (key: {name: value}), not a single value",
}
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def _plain_message(err: dict[str, Any]) -> str:
    if err["type"] in _PLAIN_WORDS:
        return _PLAIN_WORDS[err["type"]]
    msg = str(err["msg"])
    for prefix in _PYDANTIC_PREFIXES:
        msg = msg.removeprefix(prefix)
    return msg.replace("Input should be", "should be")


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``source: key.path: reason (got value)``, in the user's words."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        got = err.get("input")
        shown = "" if isinstance(got, dict) or err["type"] == "missing" else f" (got {got!r})"
        lines.append(f"{source}: {key or '<root>'}: {_plain_message(err)}{shown}")
    return "\n".join(lines)


def _missing_options(exc: ValidationError) -> list[str]:
    """The top-level keys a config lacks, when that is all that is wrong with it."""
    errors = exc.errors()
    if not errors or any(e["type"] != "missing" or len(e["loc"]) != 1 for e in errors):
        return []
    return [str(e["loc"][0]) for e in errors]


def load_config(
    model: type[ModelT],
    path: Path | str | None = None,
    flags: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> ModelT:
    """Merge the config layers and validate them into ``model``.

    Args:
        model: the pydantic model of the stage.
        path: optional YAML file (or a feature store folder: the config it was made with).
        flags: named CLI options; ``None`` values mean "not given" and are dropped. Dotted keys
            (``"optim.lr"``) address nested fields.
        sets: ``key.path=value`` overrides, applied last.

    Raises:
        WsvadError: malformed YAML, unknown keys, wrong types or out-of-range values, with the file
            and key named.
    """
    data: dict[str, Any] = _read_yaml(Path(path)) if path is not None else {}
    flag_tree: dict[str, Any] = {}
    for key, value in (flags or {}).items():
        if value is not None:
            _set_dotted(flag_tree, key, value)
    data = _deep_merge(_deep_merge(data, flag_tree), parse_sets(sets))
    source = str(path) if path is not None else "command line"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        missing = _missing_options(exc)
        if missing and path is None:  # nothing but required options left out: bad usage (exit 2)
            shown = ", ".join(f"--{key.replace('_', '-')}" for key in missing)
            raise UsageError(
                f"missing {shown} (give it on the command line, or in a file passed with --config)"
            ) from exc
        raise WsvadError(format_validation_error(exc, source)) from exc


def config_to_json(cfg: BaseModel) -> dict[str, Any]:
    """Plain-JSON form of a config (paths as strings), suitable for zarr attrs and metrics.json."""
    return json.loads(cfg.model_dump_json())


def config_hash(data: dict[str, Any]) -> str:
    """Stable short hash of a JSON-able mapping (sorted keys)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def save_config(cfg: BaseModel, path: Path) -> None:
    """Write the resolved config as YAML (atomically) so a run can be repeated with ``--config``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, yaml.safe_dump(config_to_json(cfg), sort_keys=False))
