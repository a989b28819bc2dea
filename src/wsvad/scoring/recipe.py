"""The scoring recipe of a run, and the input preparation it names (numpy only).

A detector scores what it was trained on. The recipe records every choice between the stored
features ``(N, C, *F)`` of a video (N snippets, C crops) and the sequences the detector scores,
in the order they are applied:

1. crops (``crop_mode``): ``separate`` keeps the C crops apart (each crop is scored on its own and
   the C score sequences are averaged, the common ten-crop protocol); ``mean`` averages the crops
   first and scores the mean once (what a ``crop_mode: mean`` run trained on); ``inside`` gives the
   detector all crops of a snippet at once, ``(N, C, *F)`` (the public RTFM code: the detector
   averages the crops' scores itself).
2. feature normalisation (``feature_norm``, per feature dimension d, statistics of the run's
   training snippets after step 1, recorded in the recipe): ``mean`` is mean normalisation,
   ``(x_d - mu_d) / (max_d - min_d)``; ``center`` subtracts ``mu_d`` only; ``none`` leaves the
   features alone. CLAWS (Zaheer et al., sec. 4.3: "Mean normalization is applied on the extracted
   features") gives no formula; "mean normalization" is the name of exactly this feature scaling,
   and the sentence before it already covers C3D's own input mean subtraction, so ``mean`` is the
   default of ``claws``. A constant dimension (``max = min``) is centred only.
3. bags (``score_on``): ``snippets`` gives the detector every snippet (a detector that segments or
   windows its input does so inside ``score_video``); ``bags`` cuts the snippets into the training
   bags (``bag_rule``, ``bag_count``, ``bag_pool``; the Sultani rule L2-normalises each bag after
   pooling, i.e. after the crops were averaged) and gives each bag's score to the snippets it
   pooled (Sultani et al.'s evaluation of a bag-level model). DAM's "clips" are such bags.
4. a store that already holds segments (``bagged``: imported 32-segment features) is scored as it
   is; the segment scores go back to the video's original snippets when that count is known.

``wsvad train`` writes the recipe into ``model.json`` and ``run.json`` (key ``scoring``);
:func:`wsvad.scoring.score.load_scoring_model` reads it back, so scoring never re-derives it from
the train config (whose meaning may change between versions). A run saved without one is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wsvad.errors import WsvadError
from wsvad.pipeline.bags import BagPool, BagRule, bag_scores_to_snippets, segment_into_bags

RECIPE_FORMAT = "wsvad.scoring/1"
CropMode = Literal["separate", "mean", "inside"]
ScoreOn = Literal["snippets", "bags"]


class BaggedStore(BaseModel):
    """A store whose rows are already T segments per video (``bagged`` store attr)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: BagRule
    T: int = Field(ge=1)


FeatureNormKind = Literal["none", "mean", "center"]


class FeatureNorm(BaseModel):
    """Per-dimension normalisation ``(x - shift) / scale`` fitted on the training snippets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FeatureNormKind = "none"
    shift: list[float] | None = None  # mu_d ("mean", "center")
    scale: list[float] | None = None  # max_d - min_d ("mean"); 1 where constant

    @model_validator(mode="after")
    def _check(self) -> FeatureNorm:
        wanted = {"none": (False, False), "center": (True, False), "mean": (True, True)}
        if ((self.shift is not None), (self.scale is not None)) != wanted[self.kind]:
            raise ValueError(f"feature_norm {self.kind!r} takes {wanted[self.kind]} shift/scale")
        if self.scale is not None and len(self.scale) != len(self.shift):
            raise ValueError("feature_norm shift and scale differ in length")
        return self

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(..., D)`` float32 -> normalised ``(..., D)`` float32."""
        if self.kind == "none":
            return x
        if x.shape[-1] != len(self.shift):
            raise ValueError(f"feature_norm fitted on D = {len(self.shift)}, got D = {x.shape[-1]}")
        x = x - np.asarray(self.shift, dtype=np.float32)
        return x if self.scale is None else x / np.asarray(self.scale, dtype=np.float32)


class ScoringRecipe(BaseModel):
    """How a run's test scores were made from stored features (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["wsvad.scoring/1"] = RECIPE_FORMAT
    crop_mode: CropMode
    score_on: ScoreOn
    bag_rule: BagRule
    bag_pool: BagPool
    bag_count: int = Field(ge=1)
    bagged: BaggedStore | None = None
    feature_norm: FeatureNorm = FeatureNorm()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (``model.json`` / ``run.json`` key ``scoring``)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Any, where: str) -> ScoringRecipe:
        """The recipe saved in ``where`` (a file name for the error message)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or "scoring"
            raise WsvadError(f"{where}: scoring recipe: {key}: {first['msg']}") from exc


def prepare_snippets(recipe: ScoringRecipe, features: np.ndarray) -> np.ndarray:
    """Stored features ``(N, C, *F)`` -> ``(N, K, *F)`` float32 as the detector saw them per
    snippet: ``K = C`` with crops kept apart, ``K = 1`` with crops averaged."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim < 3:
        raise ValueError(f"stored features are (N, C, *F); got shape {list(x.shape)}")
    if recipe.crop_mode == "mean":
        x = x.mean(axis=1, keepdims=True)
    x = recipe.feature_norm.apply(x)
    changed = recipe.crop_mode == "mean" or recipe.feature_norm.kind != "none"
    if changed and recipe.bagged is not None and recipe.bagged.rule == "sultani":
        # The store's segments were L2-normalised crop by crop; their mean (or their normalised
        # values) is not unit length: the Sultani rule normalises last.
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        x = x / np.maximum(norm, np.finfo(np.float32).tiny)
    return np.ascontiguousarray(x, dtype=np.float32)


def training_bags(recipe: ScoringRecipe, features: np.ndarray) -> np.ndarray:
    """Stored features ``(N, C, *F)`` -> the video's ``(T, K, *F)`` training bags: the snippets
    prepared as for scoring (:func:`prepare_snippets`), then cut by the bag rule (a ``bagged``
    store's rows are its bags already). Crops are averaged before the bags are pooled and
    L2-normalised, so a ``mean`` run trains on what it is scored on."""
    x = prepare_snippets(recipe, features)
    if recipe.bagged is not None:
        return x
    return segment_into_bags(x, recipe.bag_count, recipe.bag_rule, recipe.bag_pool)


def input_key(recipe: ScoringRecipe) -> str:
    """What :func:`prepare_snippets` changes, for cache names: ``""`` when the stored crops are
    used as they are; a fitted normalisation adds its kind and a hash of its statistics."""
    key = "-cropmean" if recipe.crop_mode == "mean" else ""
    norm = recipe.feature_norm
    if norm.kind != "none":
        digest = hashlib.sha256(json.dumps([norm.shift, norm.scale]).encode()).hexdigest()[:10]
        key += f"-norm{norm.kind}-{digest}"
    return key


def fit_feature_norm(
    kind: FeatureNormKind, videos: Iterable[np.ndarray], crop_mode: CropMode
) -> FeatureNorm:
    """The statistics of ``kind`` over every snippet (and crop) of ``videos`` (each ``(N, C,
    *F)`` as stored: the training videos), after the crop handling of ``crop_mode``."""
    if kind == "none":
        return FeatureNorm()
    total, count, low, high = 0.0, 0, None, None
    for raw in videos:
        x = np.asarray(raw, dtype=np.float32)
        if crop_mode == "mean":
            x = x.mean(axis=1, keepdims=True)
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        total = total + flat.sum(axis=0)
        count += len(flat)
        low = flat.min(axis=0) if low is None else np.minimum(low, flat.min(axis=0))
        high = flat.max(axis=0) if high is None else np.maximum(high, flat.max(axis=0))
    if not count:
        raise ValueError("feature_norm: no training snippet to fit the statistics on")
    shift = (total / count).astype(np.float32)
    if kind == "center":
        return FeatureNorm(kind=kind, shift=shift.tolist())
    spread = (high - low).astype(np.float32)
    scale = np.where(spread > 0, spread, np.float32(1.0))  # a constant dimension: centred only
    return FeatureNorm(kind=kind, shift=shift.tolist(), scale=scale.tolist())


def model_sequences(recipe: ScoringRecipe, features: np.ndarray) -> np.ndarray:
    """Stored features ``(N, C, *F)`` -> ``(K, L, *F)``: the K sequences the detector scores one by
    one with ``score_video`` (L = N snippets, or T bags with ``score_on: bags``); with crops inside,
    ``(1, L, C, *F)``."""
    x = prepare_snippets(recipe, features)  # (N, K, *F)
    if recipe.score_on == "bags" and recipe.bagged is None:
        x = segment_into_bags(x, recipe.bag_count, recipe.bag_rule, recipe.bag_pool)  # (T, K, *F)
    if recipe.crop_mode == "inside":
        return x[None]  # one sequence whose snippets hold every crop: (1, L, C, *F)
    return np.ascontiguousarray(np.moveaxis(x, 1, 0))


def to_snippet_scores(
    recipe: ScoringRecipe, scores: np.ndarray, n_rows: int, n_snippets: int | None = None
) -> np.ndarray:
    """The crop-averaged scores of :func:`model_sequences`' rows -> one float32 score per snippet.

    Args:
        scores: ``(L,)``.
        n_rows: N, the number of stored rows of the video.
        n_snippets: a ``bagged`` store only: the video's snippet count before it was cut into
            segments (``n_snippets_raw``); unknown (``None``) leaves one score per segment.
    """
    if recipe.bagged is not None:
        if n_snippets:
            return bag_scores_to_snippets(scores, n_snippets, recipe.bagged.rule)
        return np.asarray(scores, dtype=np.float32)
    if recipe.score_on == "bags":
        return bag_scores_to_snippets(scores, n_rows, recipe.bag_rule)
    return np.asarray(scores, dtype=np.float32)
