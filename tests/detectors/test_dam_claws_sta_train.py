"""DAM, CLAWS and STA end to end through ``wsvad train`` (sampler, start_epoch, checkpoint, scoring)
on a tiny planted feature store written with FeatureStore itself."""

import json

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.detectors.checkpoint import load_detector
from wsvad.errors import EXIT_OK


@pytest.mark.parametrize(
    "name, feature_shape, settings",
    [
        (
            "dam",
            (7, 8),
            [
                "--set",
                "detector.params={hidden: 16, mlp_hidden: [16]}",
                "--set",
                "bags.count=8",
                "--set",
                "bags.pool=max",
                "--set",
                "sampler.batch_per_class=5",
                "--set",
                "optim.lr=3.0e-3",
            ],
        ),
        (
            "claws",
            (16,),
            [
                "--set",
                "detector.params={hidden: [32, 8], window: 8}",
                "--set",
                "sampler.window=8",
                "--set",
                "sampler.windows_per_step=4",
                "--set",
                "optim.lr=1.0e-3",
            ],
        ),
        (
            "sta",
            (16,),
            [
                "--set",
                "detector.params={rnn_hidden: 16, test_segments: 0, checkpoint_videos: 0}",
                "--set",
                "bags.count=8",
                "--set",
                "sampler.batch_per_class=5",
                "--set",
                "optim.lr=3.0e-3",
            ],
        ),
    ],
)
def test_train_end_to_end(name, feature_shape, settings, make_planted_store, tmp_path, capsys):
    # One crop; 24-39 snippets, of which 4-8 are shifted by 2 on the first half of the last axis
    # (every row of DAM's [7, 8]). STA learns the default store's rarer, fainter runs too slowly
    # for 150 steps.
    store = make_planted_store(
        feature_shape=feature_shape,
        crops=1,
        n_train=10,
        n_test=10,
        snippets=(24, 40),
        run_lengths=(4, 9),
        shift=2.0,
        planted_fraction=0.5,
    )
    out = tmp_path / "run"
    code = run(
        [
            "train",
            "--store",
            str(store.path),
            "--out",
            str(out),
            "--detector",
            name,
            "--seed",
            "0",
            "--iterations",
            "150",
            *settings,
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["quick_frame_auc"] > 0.85, run_json["quick_frame_auc"]
    detector, meta = load_detector(out / "model")
    assert meta["detector"] == name and tuple(meta["feature_shape"]) == feature_shape
    scores = np.load(out / "scores.npz")
    assert len(scores.files) == 20
    assert all(
        0.0 <= float(scores[k].min()) and float(scores[k].max()) <= 1.0 for k in scores.files
    )
    if name == "claws":  # the per-epoch clustering state was computed and saved with the weights
        assert detector.epoch_centres.shape == (20, 2, 32)
        assert float(detector.epoch_segments.min()) >= 24
