"""``feature_norm`` (#15.6, CLAWS sec. 4.3 "mean normalization"): fitted on the training snippets,
recorded in the scoring recipe, applied to training and test inputs alike."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from wsvad.scoring.recipe import FeatureNorm, ScoringRecipe, fit_feature_norm, prepare_snippets
from wsvad.train.config import TrainConfig
from wsvad.train.run import run_train


def test_mean_normalisation_by_hand_after_the_crop_mean():
    a = np.array([[[0.0, 5.0], [2.0, 5.0]], [[4.0, 5.0], [6.0, 5.0]]], np.float32)  # (2, 2, 2)
    b = np.array([[[10.0, 5.0], [10.0, 5.0]]], np.float32)  # (1, 2, 2)
    norm = fit_feature_norm("mean", [a, b], "mean")
    # crop means of dimension 0: 1, 5, 10 -> mu 16/3, max - min 9; dimension 1 is constant 5.
    assert norm.shift == pytest.approx([16 / 3, 5.0]) and norm.scale == pytest.approx([9.0, 1.0])
    recipe = ScoringRecipe(
        crop_mode="mean",
        score_on="snippets",
        bag_rule="rtfm",
        bag_pool="mean",
        bag_count=2,
        feature_norm=norm,
    )
    np.testing.assert_allclose(
        prepare_snippets(recipe, a)[:, 0],
        [[(1 - 16 / 3) / 9, 0.0], [(5 - 16 / 3) / 9, 0.0]],
        rtol=1e-5,
    )
    centred = fit_feature_norm("center", [a, b], "separate")  # every crop a snippet: 0 2 4 6 10 10
    assert centred.shift == pytest.approx([32 / 6, 5.0]) and centred.scale is None
    assert fit_feature_norm("none", [a], "mean") == FeatureNorm()


def test_a_recipe_norm_without_its_statistics_is_refused():
    with pytest.raises(ValidationError, match="feature_norm 'mean' takes"):
        FeatureNorm(kind="mean", shift=[0.0])
    with pytest.raises(ValueError, match=r"fitted on D = 2, got D = 3"):
        FeatureNorm(kind="center", shift=[0.0, 1.0]).apply(np.zeros((1, 3), np.float32))


@pytest.fixture(scope="module")
def claws(make_module_store):
    """A planted store (the default one) and a 2-step CLAWS run on it, shared by the tests."""
    store = make_module_store("claws")
    tmp = store.path.parent
    cfg = TrainConfig.model_validate(
        {
            "store": str(store.path),
            "out": str(tmp / "run"),
            "detector": {"name": "claws", "params": {"hidden": [16, 8], "window": 8}},
            "sampler": {"window": 8},
            "crop_mode": "mean",
            "iterations": 2,
        }
    )
    assert run_train(cfg).finished
    return store, tmp / "run"


def test_claws_fits_mean_normalisation_on_its_training_videos_only(claws):
    planted_store, claws_run = claws
    model = json.loads((claws_run / "model.json").read_text())
    norm = FeatureNorm.model_validate(model["scoring"]["feature_norm"])
    assert norm.kind == "mean"  # claws' default (train_defaults)
    train_ids = [v for v in planted_store.video_ids() if v.startswith("train_")]
    snippets = np.concatenate([planted_store.read(v).mean(axis=1) for v in train_ids])  # (S, 16)
    np.testing.assert_allclose(norm.shift, snippets.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.scale, np.ptp(snippets, axis=0), rtol=1e-6)
    # Test videos are not part of the statistics: with them the range would be another.
    everything = np.concatenate(
        [planted_store.read(v).mean(axis=1) for v in planted_store.video_ids()]
    )
    assert not np.allclose(norm.scale, np.ptp(everything, axis=0))


def test_claws_trains_and_scores_on_the_normalised_features(claws):
    planted_store, claws_run = claws
    from wsvad.scoring.score import load_scoring_model, score_features
    from wsvad.train.data import SnippetVideos, load_video_infos

    model = load_scoring_model(claws_run)
    norm = model.recipe.feature_norm
    infos = [v for v in load_video_infos(planted_store)[0] if v.split == "train"]
    window = SnippetVideos(planted_store, infos, model.recipe).window(0, 0, 2, 5)  # (5, 16)
    raw = planted_store.read(infos[0].video_id)[2:7].mean(axis=1)
    expected = (raw - np.float32(norm.shift)) / np.float32(norm.scale)
    np.testing.assert_allclose(window, expected, rtol=1e-5, atol=1e-6)
    vid = "test_abnormal_00"
    scores = score_features(model.detector, model.recipe, planted_store.read(vid))
    import torch

    x = (planted_store.read(vid).mean(axis=1) - np.float32(norm.shift)) / np.float32(norm.scale)
    by_hand = model.detector.score_video(torch.from_numpy(x.astype(np.float32))).numpy()
    np.testing.assert_allclose(scores, by_hand, rtol=1e-6)
    with np.load(claws_run / "scores.npz") as saved:
        np.testing.assert_array_equal(saved[vid], scores)


def test_a_bag_cache_of_normalised_features_is_its_own(planted_store, tmp_path):
    cfg = TrainConfig.model_validate(
        {
            "store": str(planted_store.path),
            "out": str(tmp_path / "run"),
            "detector": {"name": "mil"},
            "bags": {"count": 4, "rule": "sultani"},
            "feature_norm": "center",
            "sampler": {"batch_per_class": 2},
            "iterations": 1,
        }
    )
    run_train(cfg)
    names = sorted(p.name for p in (planted_store.path / "bags").iterdir() if p.is_dir())
    assert len(names) == 1 and names[0].startswith("sultani-mean-T4-float32-normcenter-")
