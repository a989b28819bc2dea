"""The scoring recipe and ``score_features``, against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from wsvad.cli import run as cli
from wsvad.detectors import build_detector
from wsvad.detectors.checkpoint import save_detector
from wsvad.errors import WsvadError
from wsvad.pipeline.store import FeatureStore
from wsvad.scoring.recipe import ScoringRecipe, model_sequences, prepare_snippets
from wsvad.scoring.score import load_scoring_model, score_features


def _recipe(**kw) -> ScoringRecipe:
    base = dict(crop_mode="separate", score_on="snippets", bag_rule="rtfm", bag_pool="mean")
    return ScoringRecipe(**(base | {"bag_count": 2} | kw))


@pytest.fixture
def mil():
    torch.manual_seed(0)
    return build_detector("mil", (3,), {}).eval()


def _forward(detector, seq: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return detector(torch.from_numpy(seq.astype(np.float32))[None])[0].numpy()


def test_mean_crops_are_averaged_before_the_sultani_bags_are_normalised():
    x = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
    seqs = model_sequences(_recipe(crop_mode="mean", score_on="bags", bag_rule="sultani"), x)
    # Sultani rule, N = 5, T = 2: round(linspace(1, 5, 3)) = 1, 3, 5 -> snippets [0, 2), [2, 4).
    mean = x.mean(axis=1)
    bags = np.stack([mean[0:2].mean(0), mean[2:4].mean(0)])
    bags /= np.linalg.norm(bags, axis=1, keepdims=True)
    assert seqs.shape == (1, 2, 3)
    np.testing.assert_allclose(seqs[0], bags, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(seqs[0], axis=1), 1.0, rtol=1e-6)


def test_separate_crops_are_scored_one_by_one_and_averaged(mil):
    x = np.random.default_rng(1).normal(size=(6, 3, 3)).astype(np.float32)
    expected = np.mean([_forward(mil, x[:, c]) for c in range(3)], axis=0)
    np.testing.assert_allclose(score_features(mil, _recipe(), x), expected, rtol=1e-6)


def test_mean_crops_are_scored_once_on_the_crop_mean(mil):
    x = np.random.default_rng(2).normal(size=(6, 3, 3)).astype(np.float32)
    got = score_features(mil, _recipe(crop_mode="mean"), x)
    np.testing.assert_allclose(got, _forward(mil, x.mean(axis=1)), rtol=1e-6)


def test_bag_scores_go_to_the_snippets_each_bag_pooled(mil):
    x = np.random.default_rng(3).normal(size=(5, 1, 3)).astype(np.float32)
    # RTFM rule, N = 5, T = 2: linspace(0, 5, 3) -> [0, 2), [2, 5).
    bags = np.stack([x[0:2, 0].mean(0), x[2:5, 0].mean(0)])
    b0, b1 = _forward(mil, bags)
    got = score_features(mil, _recipe(score_on="bags"), x)
    np.testing.assert_allclose(got, [b0, b0, b1, b1, b1], rtol=1e-6)


def test_a_bagged_sultani_store_is_renormalised_after_the_crop_mean_and_spread_back(mil):
    segments = np.random.default_rng(4).normal(size=(2, 2, 3)).astype(np.float32)
    segments /= np.linalg.norm(segments, axis=-1, keepdims=True)  # L2 per crop, as stored
    recipe = _recipe(crop_mode="mean", score_on="bags", bagged={"rule": "sultani", "T": 2})
    prepared = prepare_snippets(recipe, segments)[:, 0]
    mean = segments.mean(axis=1)
    np.testing.assert_allclose(prepared, mean / np.linalg.norm(mean, axis=1, keepdims=True))
    s0, s1 = _forward(mil, prepared)
    # 5 original snippets, Sultani rule: [0, 2), [2, 4); the last snippet takes its neighbour's.
    got = score_features(mil, recipe, segments, n_snippets=5)
    np.testing.assert_allclose(got, [s0, s0, s1, s1, s1], rtol=1e-6)
    assert score_features(mil, recipe, segments).shape == (2,)


def test_scoring_restores_the_training_mode(mil):
    mil.train()
    x = np.random.default_rng(5).normal(size=(4, 1, 3)).astype(np.float32)
    first = score_features(mil, _recipe(), x)
    assert mil.training
    np.testing.assert_array_equal(first, score_features(mil, _recipe(), x))  # no dropout


def test_a_malformed_recipe_names_the_file_and_key():
    with pytest.raises(WsvadError, match=r"^m\.json: scoring recipe: crop_mode: Input should be"):
        ScoringRecipe.from_json(_recipe().to_json() | {"crop_mode": "all"}, "m.json")


def _old_run(tmp_path, mil, with_recipe: bool):
    run = tmp_path / "run"
    meta = {"class_names": ["Normal", "A"]}
    if with_recipe:
        meta["scoring"] = _recipe().to_json()
    save_detector(run / "model", mil, meta)
    (run / "run.json").write_text(json.dumps({"kind": "single", "store": str(tmp_path / "s")}))
    return run


def test_a_run_without_a_recipe_is_refused_with_one_line_saying_retrain(tmp_path, mil, capsys):
    run = _old_run(tmp_path, mil, with_recipe=False)
    with pytest.raises(WsvadError) as err:
        load_scoring_model(run)
    assert str(err.value) == (
        f"{run / 'model.json'}: no scoring recipe (saved by a wsvad that did not record how its "
        "test scores were made); retrain the run to score it"
    )
    store = FeatureStore.create(
        tmp_path / "s", {"feature_shape": [3], "dtype": "float32", "crops": 1, "backbone": "test"}
    )
    store.write_video("v", np.zeros((4, 1, 3), np.float32), {"n_frames": 64})
    assert cli(["score", "v", "--run", str(run), "--from-store"]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("error: ")
    assert "no scoring recipe" in err_lines[0] and "retrain the run" in err_lines[0]


def test_a_run_with_a_recipe_loads_in_eval_mode(tmp_path, mil):
    model = load_scoring_model(_old_run(tmp_path, mil, with_recipe=True))
    assert model.recipe == _recipe() and not model.detector.training
