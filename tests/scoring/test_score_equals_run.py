"""Issue #16: `wsvad score` on a test video equals that video's row of the run's ``scores.npz``,
for every registered detector trained with its shipped ``configs/train/synthetic_<name>.yaml``.

The configs' recipes are kept (bag rule, count, pooling, crop mode, ``score_on``, the detectors'
test segmenting); only the training length and the layer widths are shrunk so that the seven
trainings take seconds. The stores have two crops, so the crop rule matters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from wsvad.cli import run as cli
from wsvad.detectors import list_detectors
from wsvad.pipeline.store import FeatureStore

REPO = Path(__file__).resolve().parents[2]
TIME_KEEPING = {"dam", "joint"}  # feature_ndim 2: [t, D] per snippet
# Narrower layers (the recipe is untouched), so each training step takes milliseconds.
SHRINK = {
    "mil": [],
    "salient": [],
    "claws": [],
    "rtfm": ["detector.params.branch_channels=8"],
    "sta": ["detector.params.rnn_hidden=8"],
    "dam": ["detector.params.hidden=16", "detector.params.mlp_hidden=[8]"],
    "joint": [
        "detector.params.lstm_hidden=8",
        "detector.params.att1_latent=4",
        "detector.params.det_hidden=16",
        "detector.params.cls_hidden=8",
    ],
}


@pytest.fixture(scope="module")
def stores(make_module_store) -> dict[str, Path]:
    """Two crops, 8 + 8 training and 2 + 2 test videos of 6-13 snippets: [8] and [2, 8]."""
    common = dict(crops=2, n_train=8, n_test=2, snippets=(6, 14), run_lengths=(2, 4), shift=3.0)
    return {
        "plain": make_module_store("plain", feature_shape=(8,), **common).path,
        "time": make_module_store("time", feature_shape=(2, 8), seed=1, **common).path,
    }


def test_every_registered_detector_is_covered():
    assert sorted(SHRINK) == list_detectors()


def _snippet_csv(path: Path) -> np.ndarray:
    rows = path.read_text().splitlines()
    assert rows[0] == "snippet,start_frame,end_frame,score,latency_ms"
    return np.array([float(r.split(",")[3]) for r in rows[1:]])


@pytest.mark.parametrize("name", sorted(SHRINK))
def test_score_from_store_equals_the_runs_test_scores(name, stores, tmp_path):
    store = stores["time" if name in TIME_KEEPING else "plain"]
    out = tmp_path / "run"
    sets = ["iterations=2", "sampler.batch_per_class=4", *SHRINK[name]]
    code = cli(
        ["train", "--config", str(REPO / f"configs/train/synthetic_{name}.yaml")]
        + ["--store", str(store), "--out", str(out)]
        + [arg for s in sets for arg in ("--set", s)]
    )
    assert code == 0
    recipe = json.loads((out / "model.json").read_text())["scoring"]
    _assert_recipe_is_the_configs(recipe, REPO / f"configs/train/synthetic_{name}.yaml")
    assert json.loads((out / "run.json").read_text())["scoring"] == recipe
    with np.load(out / "scores.npz") as data:
        saved = {vid: data[vid] for vid in data.files}
    test_ids = sorted(v for v in FeatureStore.open(store).video_ids() if v.startswith("test_"))
    assert sorted(saved) == test_ids
    vid = "test_abnormal_01"
    code = cli(["score", vid, "--run", str(out), "--from-store", "--out", str(tmp_path / "score")])
    assert code == 0
    printed = _snippet_csv(tmp_path / "score" / "snippet_scores.csv")
    assert printed.shape == saved[vid].shape == (FeatureStore.open(store).read(vid).shape[0],)
    # The CSV holds 6 decimals: at most 5e-7 from the float32 score.
    np.testing.assert_allclose(printed, saved[vid], rtol=0, atol=1e-6)


def _assert_recipe_is_the_configs(recipe: dict, config: Path) -> None:
    cfg = yaml.safe_load(config.read_text())
    assert recipe["crop_mode"] == cfg["crop_mode"]
    assert recipe["score_on"] == cfg["score_on"]
    assert recipe["bag_count"] == cfg.get("bags", {}).get("count", 32)
