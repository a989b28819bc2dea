"""``score_features``: a video's features -> the run's snippet scores, the one scoring function.

Train's test scores (``scores.npz``), ``wsvad evaluate`` (class predictions for mAA),
``wsvad score`` (a new video, or a stored one) and streaming all call it with the run's
:class:`~wsvad.scoring.recipe.ScoringRecipe`, so a score printed by any of them equals the score
the run was evaluated with.

Usage::

    from wsvad.scoring.score import load_scoring_model, score_features

    model = load_scoring_model("runs/synth_mil")        # detector (eval mode), recipe, model.json
    scores = score_features(model.detector, model.recipe, store.read("video_id"))  # (N,) float32
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from wsvad.detectors.base import Detector
from wsvad.errors import WsvadError
from wsvad.scoring.recipe import ScoringRecipe, model_sequences, to_snippet_scores


class ScoringModel(NamedTuple):
    """A run's trained detector with the recipe its test scores were made with."""

    detector: Detector  # in eval mode
    recipe: ScoringRecipe
    meta: dict[str, Any]  # the rest of model.json (detector, params, class_names, ...)


def recipe_from_meta(meta: dict[str, Any], where: str) -> ScoringRecipe:
    """The ``scoring`` entry of a saved model's JSON; refused when absent (one line, says why)."""
    if "scoring" not in meta:
        raise WsvadError(
            f"{where}: no scoring recipe (saved by a wsvad that did not record how its test scores "
            "were made); retrain the run to score it"
        )
    return ScoringRecipe.from_json(meta["scoring"], where)


def load_scoring_model(run_dir: Path | str, device: str = "cpu") -> ScoringModel:
    """The detector of ``RUN/model.*`` (eval mode, on ``device``) and its scoring recipe.

    ``run_dir`` is a single-seed run (a multi-seed run's ``seed-<k>/``).
    """
    from wsvad.detectors.checkpoint import load_detector

    stem = Path(run_dir) / "model"
    meta_path = stem.with_name("model.json")
    if not meta_path.is_file():
        raise WsvadError(f"{meta_path}: missing (no trained model in {run_dir})")
    # Read the recipe first: a run without one is refused before its weights are loaded.
    recipe = recipe_from_meta(json.loads(meta_path.read_text(encoding="utf-8")), str(meta_path))
    detector, meta = load_detector(stem, device=device)
    return ScoringModel(detector, recipe, meta)


def _device(detector: Detector) -> torch.device:
    param = next(detector.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def score_features(
    detector: Detector,
    recipe: ScoringRecipe,
    features: np.ndarray,
    n_snippets: int | None = None,
) -> np.ndarray:
    """Snippet scores of one video, exactly as the run's test scores were made.

    Args:
        detector: the run's detector (scored in eval mode; its mode is restored afterwards).
        recipe: the run's scoring recipe (``load_scoring_model`` or the train stage).
        features: ``(N, C, *F)`` the video's stored features, in the store's layout (N snippets,
            or N segments for a ``bagged`` store; C crops). Any float dtype.
        n_snippets: ``bagged`` stores only: the snippet count before segmenting
            (``n_snippets_raw``), to give the segment scores back to the snippets.

    Returns:
        float32 ``(N,)`` (``(n_snippets,)`` for a bagged store when given): one score per snippet,
        in ``[0, 1]``. ``wsvad.data.groundtruth.snippet_scores_to_frames`` makes frame scores.
    """
    scores = _mean_over_sequences(detector.score_video, detector, recipe, features)  # (L,)
    return to_snippet_scores(recipe, scores, len(features), n_snippets).astype(np.float32)


@torch.no_grad()
def classify_features(
    detector: Detector, recipe: ScoringRecipe, features: np.ndarray
) -> np.ndarray:
    """Class probabilities ``(n_classes,)`` of one video from a detector with a classification
    head (``classify_video``), its inputs prepared as for :func:`score_features` and the
    probabilities averaged over the scored sequences (crops)."""
    if not hasattr(detector, "classify_video"):
        raise ValueError(f"{type(detector).__name__} has no classification head")
    return _mean_over_sequences(detector.classify_video, detector, recipe, features)


def _mean_over_sequences(method, detector: Detector, recipe: ScoringRecipe, features) -> np.ndarray:
    """``method`` (a bound ``score_video``/``classify_video``) on each of the recipe's model input
    sequences of one video (one per scored crop), in eval mode (the mode is restored afterwards),
    averaged over the sequences."""
    was_training = detector.training
    detector.eval()
    device = _device(detector)
    try:
        outputs = [
            method(torch.from_numpy(seq).to(device)).float().cpu().numpy()
            for seq in model_sequences(recipe, features)  # (K, L, *F)
        ]
    finally:
        detector.train(was_training)
    return np.mean(outputs, axis=0)
