"""``wsvad import-model``: authors' released weights -> a run directory, as if trained by wsvad.

The run has what a trained run has (``config.yaml``, ``model.safetensors`` + ``model.json``,
``scores.npz`` for the store's test videos, ``run.json``), so ``wsvad evaluate --run`` and ``wsvad
score --run`` use it unchanged; ``run.json`` and ``model.json`` add ``imported`` (format, file,
sha256) and report 0 training steps.

Formats:
    rtfm: a ``torch.save`` of the public RTFM code's ``Model(n_features, batch_size)`` state dict
        (github.com/tianyu0207/RTFM, ``main.py`` saves ``ckpt/*.pkl``), mapped key by key onto the
        ``rtfm`` detector (wsvad.detectors.rtfm.PUBLIC_CODE_PREFIXES). Read with
        ``torch.load(weights_only=True)``: a file that would run code is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsvad.checksums import sha256_file
from wsvad.config import save_config
from wsvad.errors import WsvadError
from wsvad.train.config import DetectorConfig, TrainConfig, resolve

FORMATS = ("rtfm",)


def read_public_state_dict(path: Path) -> dict[str, Any]:
    """A ``torch.save``'d state dict, loaded without running code (``weights_only=True``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise WsvadError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... here
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WsvadError(
            f"{path}: not a state dict that loads safely (weights_only): {reason}"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise WsvadError(
            f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}"
        )
    return state


def import_model(
    fmt: str,
    weights: Path,
    store: Path,
    out: Path,
    dataset: str | None = None,
    root: Path | None = None,
    overwrite: bool = False,
):
    """Write the run directory ``out`` for released weights ``weights`` of format ``fmt``, with
    test scores for the videos of ``store``; returns the train stage's ``TrainResult``."""
    from wsvad.detectors import build_detector
    from wsvad.detectors.rtfm import state_from_public_code
    from wsvad.train import run as train_run
    from wsvad.train.data import load_video_infos
    from wsvad.train.scoring import scoring_recipe

    if fmt not in FORMATS:
        raise WsvadError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    public = read_public_state_dict(weights)
    cfg = TrainConfig(
        store=store,
        out=out,
        dataset=dataset,
        root=root,
        detector=DetectorConfig(name="rtfm"),
    )
    cls = train_run._detector_class("rtfm")
    cfg = train_run._crops_inside(resolve(cfg, cls.train_defaults))  # the code's 10 crops inside
    opened = train_run._open_store(cfg, cls)
    shape = train_run._detector_shape(cfg, opened)
    detector = build_detector("rtfm", shape, cfg.detector.params)
    try:
        detector.load_state_dict(state_from_public_code(public, detector))
    except ValueError as exc:
        raise WsvadError(f"{weights}: {exc}") from None
    train_run._prepare_out(cfg, overwrite)
    save_config(cfg, Path(out) / "config.yaml")
    infos, class_names, report = load_video_infos(opened, cfg.dataset, cfg.root)
    data = train_run._TrainingData(
        train=[v for v in infos if v.split == "train"],
        val=[],
        test=[v for v in infos if v.split == "test"],
        class_names=class_names,
        report=report,
        videos=None,
        val_videos=None,
        recipe=scoring_recipe(cfg, opened),
    )
    imported = {"format": fmt, "weights": str(weights), "weights_sha256": sha256_file(weights)}
    return _write_run(cfg, opened, data, detector, imported)


def _write_run(cfg: TrainConfig, store, data, detector, imported: dict[str, Any]):
    """Weights, test scores and ``run.json`` of an imported model (the train stage's writers)."""
    from wsvad.detectors.checkpoint import save_detector
    from wsvad.train import run as train_run
    from wsvad.train.record import Outcome, single_run_json, snippet_geometry
    from wsvad.train.scoring import collapse_warning, quick_frame_auc, save_scores, score_split

    out = Path(cfg.out)
    model_meta = {**train_run._model_meta(cfg, store, data), "imported": imported}
    save_detector(out / "model", detector, {**model_meta, "step": 0, "selection_score": None})
    scores = score_split(detector, store, data.test, data.recipe)
    save_scores(out / "scores.npz", scores)
    auc = quick_frame_auc(scores, data.test, *snippet_geometry(store))
    collapse = collapse_warning(scores)
    outcome = Outcome(0, 0, None, auc, collapse)
    run_json = single_run_json(cfg, store, data, model_meta, outcome)
    train_run._write_json(out / "run.json", {**run_json, "imported": imported})
    return train_run.TrainResult(
        out, cfg.seed, 0, True, auc, cfg.selection.mode, 0, data.report, collapse=collapse
    )
