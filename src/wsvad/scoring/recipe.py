"""The scoring recipe of a run, and the input preparation it names (numpy only).

A detector scores what it was trained on. The recipe records every choice between the stored
features ``(N, C, *F)`` of a video (N snippets, C crops) and the sequences the detector scores,
in the order they are applied:

1. crops (``crop_mode``): ``separate`` keeps the C crops apart (each crop is scored on its own and
   the C score sequences are averaged, the common ten-crop protocol); ``mean`` averages the crops
   first and scores the mean once (what a ``crop_mode: mean`` run trained on).
2. bags (``score_on``): ``snippets`` gives the detector every snippet (a detector that segments or
   windows its input does so inside ``score_video``); ``bags`` cuts the snippets into the training
   bags (``bag_rule``, ``bag_count``, ``bag_pool``; the Sultani rule L2-normalises each bag after
   pooling, i.e. after the crops were averaged) and gives each bag's score to the snippets it
   pooled (Sultani et al.'s evaluation of a bag-level model). DAM's "clips" are such bags.
3. a store that already holds segments (``bagged``: imported 32-segment features) is scored as it
   is; the segment scores go back to the video's original snippets when that count is known.

``wsvad train`` writes the recipe into ``model.json`` and ``run.json`` (key ``scoring``);
:func:`wsvad.scoring.score.load_scoring_model` reads it back, so scoring never re-derives it from
the train config (whose meaning may change between versions). A run saved without one is refused.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wsvad.errors import WsvadError
from wsvad.pipeline.bags import BagPool, BagRule, bag_scores_to_snippets, segment_into_bags

RECIPE_FORMAT = "wsvad.scoring/1"
CropMode = Literal["separate", "mean"]
ScoreOn = Literal["snippets", "bags"]


class BaggedStore(BaseModel):
    """A store whose rows are already T segments per video (``bagged`` store attr)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: BagRule
    T: int = Field(ge=1)


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
        if recipe.bagged is not None and recipe.bagged.rule == "sultani":
            # The store's segments were L2-normalised crop by crop; their mean is not unit length.
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
    used as they are."""
    return "-cropmean" if recipe.crop_mode == "mean" else ""


def model_sequences(recipe: ScoringRecipe, features: np.ndarray) -> np.ndarray:
    """Stored features ``(N, C, *F)`` -> ``(K, L, *F)``: the K sequences the detector scores one by
    one with ``score_video`` (L = N snippets, or T bags with ``score_on: bags``)."""
    x = prepare_snippets(recipe, features)  # (N, K, *F)
    if recipe.score_on == "bags" and recipe.bagged is None:
        x = segment_into_bags(x, recipe.bag_count, recipe.bag_rule, recipe.bag_pool)  # (T, K, *F)
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
