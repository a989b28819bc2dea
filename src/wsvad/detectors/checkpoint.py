"""Detector weights on disk: ``<stem>.safetensors`` (tensors only) + ``<stem>.json`` (plain JSON).

The JSON names the detector, its params, feature shape and class count, so :func:`load_detector`
rebuilds the module through the registry before loading the weights (no pickle anywhere). The JSON
is written last and records the weights' sha256: it is the completion marker, and a pair that does
not belong together is refused instead of silently loading other weights.

This is the one module of ``wsvad.detectors`` that reads and writes files: train saves detectors
and evaluate (``wsvad evaluate``, ``wsvad score``) loads them, and evaluate may not import train.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from wsvad.atomic import atomic_path, move_durably, write_text_atomic
from wsvad.checksums import sha256_file
from wsvad.detectors.base import Detector
from wsvad.errors import WsvadError

FORMAT = "wsvad.detector/1"


def save_tensors(path: Path, tensors: dict[str, Tensor]) -> str:
    """Write ``tensors`` to ``path`` atomically; returns the file's sha256."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        # Clones break memory sharing between entries, which safetensors refuses to write.
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, str(tmp))
        digest = sha256_file(tmp)
    return digest


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write plain JSON atomically (:func:`wsvad.atomic.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def previous_weights(stem: Path) -> Path:
    """Where :func:`save_pair_keeping_previous` keeps the tensors the current JSON still names."""
    return stem.with_name(stem.name + ".previous.safetensors")


def save_pair_keeping_previous(stem: Path, tensors: dict[str, Tensor], meta: dict[str, Any]):
    """Overwrite the pair at ``stem`` so that a kill at any instant leaves a readable pair.

    The tensors file is replaced before the JSON that names its sha256, so between the two renames
    the old JSON would name tensors that are gone. The old tensors are therefore moved aside first
    (:func:`previous_weights`); :func:`read_pair` with ``previous=True`` falls back to them.
    """
    stem = Path(stem)
    weights = stem.with_name(stem.name + ".safetensors")
    if weights.is_file() and sha256_file(weights) == _named_sha256(stem):
        # Only the tensors the JSON names are worth keeping: after a kill between the renames,
        # the named ones are already aside and ``weights`` is an orphan to overwrite.
        move_durably(weights, previous_weights(stem))
    digest = save_tensors(weights, tensors)
    write_json(stem.with_name(stem.name + ".json"), {**meta, "weights_sha256": digest})


def _named_sha256(stem: Path) -> str | None:
    try:
        return json.loads(stem.with_name(stem.name + ".json").read_text())["weights_sha256"]
    except (OSError, ValueError, KeyError):
        return None


def read_pair(stem: Path, previous: bool = False) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read ``<stem>.safetensors`` and ``<stem>.json``, checking that they belong together.

    With ``previous``, tensors kept aside by :func:`save_pair_keeping_previous` are accepted when
    they are the ones the JSON names (a kill between the two renames of a checkpoint)."""
    from safetensors.torch import load_file

    stem = Path(stem)
    meta_path = stem.with_name(stem.name + ".json")
    candidates = [stem.with_name(stem.name + ".safetensors")]
    if previous:
        candidates.append(previous_weights(stem))
    if not meta_path.is_file():
        raise WsvadError(f"{meta_path}: missing (not a saved detector or checkpoint)")
    present = [path for path in candidates if path.is_file()]
    if not present:
        raise WsvadError(f"{candidates[0]}: missing (its {meta_path.name} exists)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WsvadError(f"{meta_path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    expected = meta.get("weights_sha256")
    for weights_path in present:
        if expected is None or expected == sha256_file(weights_path):
            return load_file(str(weights_path)), meta
    raise WsvadError(
        f"{present[0]}: does not match {meta_path.name} (sha256 differs; was one of them replaced?)"
    )


def save_detector(
    path_stem: Path | str, detector: Detector, meta: dict[str, Any] | None = None
) -> None:
    """Save weights to ``<stem>.safetensors`` and
    ``{detector, params, feature_shape, n_classes, **meta}`` to ``<stem>.json``. ``detector`` must
    come from :func:`wsvad.detectors.build_detector`."""
    spec = getattr(detector, "build_spec", None)
    if spec is None:
        raise ValueError(
            f"{type(detector).__name__} was not built by build_detector; "
            "cannot record how to rebuild it"
        )
    stem = Path(path_stem)
    digest = save_tensors(stem.with_name(stem.name + ".safetensors"), detector.state_dict())
    data = {**(meta or {}), **spec, "format": FORMAT, "weights_sha256": digest}
    write_json(stem.with_name(stem.name + ".json"), data)


def load_detector(path_stem: Path | str, device: str = "cpu") -> tuple[Detector, dict[str, Any]]:
    """Rebuild the detector saved at ``path_stem`` (in eval mode) and return it with its meta."""
    from wsvad.detectors.registry import build_detector

    stem = Path(path_stem)
    tensors, meta = read_pair(stem)
    try:
        detector = build_detector(
            meta["detector"],
            tuple(meta["feature_shape"]),
            meta.get("params"),
            int(meta.get("n_classes", 1)),
        )
    except KeyError as exc:  # a key missing from the JSON
        raise WsvadError(f"{stem}.json: {exc.args[0] if exc.args else exc}") from exc
    except WsvadError as exc:  # a detector name the registry does not know
        raise WsvadError(f"{stem}.json: {exc}") from exc
    missing, unexpected = detector.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise WsvadError(
            f"{stem}.safetensors: weights do not fit detector {meta['detector']!r} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return detector.to(device).eval(), meta
