"""``crop_mode: inside`` (#15.1): every crop of a video in one sample, as the public RTFM code
trains (``(B, T, C, D)``: top-k on crop-averaged magnitudes, scores averaged over crops)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from wsvad.cli import run as cli
from wsvad.errors import WsvadError
from wsvad.pipeline.bags import segment_into_bags
from wsvad.train.cache import ensure_bag_cache, load_bags
from wsvad.train.config import TrainConfig
from wsvad.train.data import BagVideos, load_video_infos
from wsvad.train.run import run_train
from wsvad.train.samplers import build_sampler


def _cfg(store, out, **extra) -> TrainConfig:
    data = {
        "store": str(store.path),
        "out": str(out),
        "iterations": 2,
        "sampler": {"batch_per_class": 2},
        "bags": {"count": 8},
        "detector": {"name": "rtfm", "params": {"branch_channels": 8}},
    }
    return TrainConfig.model_validate(data | extra)


@pytest.fixture(scope="module")
def inside(make_module_store):
    """The default planted store (2 crops of 16-d) and a 2-step rtfm run on it with its defaults."""
    store = make_module_store("inside")
    run_dir = store.path.parent / "run"
    assert run_train(_cfg(store, run_dir)).finished
    return store, run_dir


def test_rtfm_trains_with_every_crop_inside_by_default(inside):
    _, out = inside
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["crop_mode"] == "inside" and saved["detector"]["params"]["crops_inside"] is True
    model = json.loads((out / "model.json").read_text())
    assert model["feature_shape"] == [2, 16]  # (C, D): the planted store has 2 crops of 16-d
    assert model["scoring"]["crop_mode"] == "inside"


def test_an_inside_batch_holds_every_crop_of_its_videos_bags(planted_store):
    from wsvad.train.config import SamplerConfig

    infos = [v for v in load_video_infos(planted_store)[0] if v.split == "train"]
    cache = ensure_bag_cache(planted_store, "rtfm", "mean", 8)
    videos = BagVideos(load_bags(cache, [v.video_id for v in infos], "inside"), infos)
    assert videos.array.shape == (len(infos), 8, 1, 2, 16) and videos.n_crops == 1
    batch = build_sampler("balanced", videos, SamplerConfig(batch_per_class=2), 0).next_batch()
    assert batch.features.shape == (4, 8, 2, 16)
    for row, index in zip(batch.features, batch.video_index.tolist(), strict=True):
        raw = planted_store.read(infos[index].video_id)  # (N, 2, 16)
        expected = segment_into_bags(raw, 8, "rtfm", "mean")  # (T, 2, 16), crops kept
        np.testing.assert_allclose(row.numpy(), expected, rtol=1e-6)


def test_inside_test_scores_average_the_crops_inside_the_model(inside):
    from wsvad.scoring.score import load_scoring_model

    planted_store, out = inside
    model = load_scoring_model(out)
    vid = "test_abnormal_00"
    raw = torch.from_numpy(planted_store.read(vid))  # (N, C, D)
    with torch.no_grad():
        per_crop = [model.detector(raw[None, :, c : c + 1])[0] for c in range(2)]
    expected = torch.stack(per_crop).mean(0).numpy()  # each crop through the MTN, scores averaged
    with np.load(out / "scores.npz") as scores:
        np.testing.assert_allclose(scores[vid], expected, rtol=1e-5, atol=1e-6)


def test_inside_is_refused_for_a_detector_that_scores_one_crop(planted_store, tmp_path):
    cfg = _cfg(planted_store, tmp_path / "run", crop_mode="inside", detector={"name": "mil"})
    with pytest.raises(WsvadError, match=r"^crop_mode inside: detector 'mil' scores one crop at a"):
        run_train(cfg)


def test_crops_inside_contradicting_the_crop_mode_is_refused(planted_store, tmp_path, capsys):
    code = cli(
        ["train", "--store", str(planted_store.path), "--out", str(tmp_path / "run")]
        + ["--detector", "rtfm", "--set", "crop_mode=separate"]
        + ["--set", "detector.params.crops_inside=true"]
    )
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "error: detector.params.crops_inside=True contradicts crop_mode separate; set crop_mode: "
        "inside for crops inside a sample, and leave crops_inside unset"
    )
