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
import os
from pathlib import Path
from typing import Any

from torch import Tensor

from wsvad.checksums import sha256_file
from wsvad.detectors.base import Detector
from wsvad.errors import WsvadError

FORMAT = "wsvad.detector/1"


def save_tensors(path: Path, tensors: dict[str, Tensor]) -> str:
    """Write ``tensors`` to ``path`` atomically; returns the file's sha256."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Clones break memory sharing between entries, which safetensors refuses to write.
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, str(tmp))
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    return digest


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write plain JSON atomically (tmp file + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_pair(stem: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read ``<stem>.safetensors`` and ``<stem>.json``, checking that they belong together."""
    from safetensors.torch import load_file

    stem = Path(stem)
    meta_path, weights_path = (
        stem.with_name(stem.name + ".json"),
        stem.with_name(stem.name + ".safetensors"),
    )
    if not meta_path.is_file():
        raise WsvadError(f"{meta_path}: missing (not a saved detector or checkpoint)")
    if not weights_path.is_file():
        raise WsvadError(f"{weights_path}: missing (its {meta_path.name} exists)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WsvadError(f"{meta_path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    expected = meta.get("weights_sha256")
    if expected is not None and expected != sha256_file(weights_path):
        raise WsvadError(
            f"{weights_path}: does not match {meta_path.name} "
            "(sha256 differs; was one of them replaced?)"
        )
    return load_file(str(weights_path)), meta


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
