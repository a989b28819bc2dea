"""Without a config, ``wsvad train --detector X`` resolves to the paper's (or released code's)
recipe: the detector's ``train_defaults`` fill every key the config leaves open."""

from __future__ import annotations

import pytest

from wsvad.detectors import detector_class
from wsvad.train.config import TrainConfig, resolve


def _bare(name: str, **extra) -> TrainConfig:
    return resolve(
        TrainConfig.model_validate({"store": "s", "out": "o", "detector": {"name": name}, **extra}),
        detector_class(name).train_defaults,
    )


def test_dam_without_a_config_trains_16_max_pooled_clips_and_scores_clips():
    cfg = _bare("dam")  # Majhi et al. AVSS 2021, sec. 3.2 and 4.1
    assert (cfg.bags.rule, cfg.bags.pool, cfg.bags.count) == ("rtfm", "max", 16)
    assert (cfg.score_on, cfg.crop_mode) == ("bags", "mean")
    assert (cfg.optim.name, cfg.optim.lr, cfg.sampler.batch_per_class) == ("adam", 1e-4, 10)


def test_joint_without_a_config_max_pools_32_segments():
    cfg = _bare("joint")  # Majhi et al. FG 2021, sec. III-B and IV-A
    assert (cfg.bags.rule, cfg.bags.pool, cfg.bags.count) == ("rtfm", "max", 32)
    # score_video cuts the raw test snippets into the same 32 max-pooled segments
    assert cfg.score_on == "snippets"
    assert (cfg.optim.name, cfg.optim.lr, cfg.sampler.batch_per_class) == ("adam", 1e-4, 30)


def test_mil_without_a_config_is_the_released_keras_recipe():
    cfg = _bare("mil")
    assert (cfg.bags.rule, cfg.bags.count, cfg.score_on) == ("sultani", 32, "bags")
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.eps, cfg.optim.weight_decay) == (
        "adagrad",
        1e-2,
        1e-8,
        0.0,
    )
    assert cfg.optim.initial_accumulator_value == 0.0
    assert (cfg.iterations, cfg.sampler.batch_per_class) == (20000, 30)


@pytest.mark.parametrize("name", ["salient", "sta", "rtfm"])
def test_detectors_without_bag_defaults_get_the_generic_32_mean_bags(name):
    cfg = _bare(name)
    assert (cfg.bags.rule, cfg.bags.pool, cfg.bags.count) == ("rtfm", "mean", 32)


def test_an_explicit_bag_count_wins_over_the_detector_default():
    assert _bare("dam", bags={"count": 8}).bags.count == 8
