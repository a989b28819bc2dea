"""TrainConfig: everything ``wsvad train`` needs, validated once (defaults < YAML < flags < --set).

Keys left ``None`` (optimizer, sampler and bag settings, iterations) are filled by
:func:`resolve` from the detector's ``train_defaults`` (the paper's settings), then from the
generic defaults here; the resolved config is what ``RUN/config.yaml`` records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wsvad.config import Device
from wsvad.pipeline.bags import BagPool, BagRule
from wsvad.scoring.recipe import CropMode, FeatureNormKind, ScoreOn


class DetectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "mil"  # registry key (wsvad.detectors.list_detectors())
    params: dict[str, Any] = {}  # validated against the detector's Params model


class BagConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # boundary rule (wsvad.pipeline.bags); default rtfm
    rule: BagRule | None = None
    pool: BagPool | None = None  # pooling inside a bag; default mean
    count: int | None = Field(None, ge=1)  # T bags per video; default 32
    dtype: Literal["float32", "float16"] = "float32"  # of the bag cache (float16 halves its memory)


class SamplerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_per_class: int | None = Field(None, ge=1)  # balanced: n normal + n abnormal per step
    # random_consecutive: b consecutive snippets per row; default 64
    window: int | None = Field(None, ge=1)
    windows_per_step: int | None = Field(None, ge=1)  # random_consecutive: rows per step; default 1


class OptimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["adam", "adagrad", "adadelta", "rmsprop", "radam", "sgd"] | None = None
    lr: float | None = Field(None, gt=0.0)
    weight_decay: float | None = Field(None, ge=0.0)
    momentum: float | None = Field(None, ge=0.0)  # sgd and rmsprop only; default 0
    # the epsilon in the denominator (not sgd); default: torch's for that optimizer (adagrad
    # 1e-10, adam 1e-8, adadelta 1e-6); Sultani's Keras code uses 1e-8
    eps: float | None = Field(None, gt=0.0)
    # adagrad only: the accumulator's start; default 0 (as Keras 1; tf.keras 2 used 0.1)
    initial_accumulator_value: float | None = Field(None, ge=0.0)
    rho: float | None = Field(None, gt=0.0, lt=1.0)  # adadelta only: decay of the averages; 0.9
    # steps at which lr is multiplied by lr_gamma; default none
    lr_milestones: list[int] | None = None
    lr_gamma: float | None = Field(None, gt=0.0)  # default 0.1


class SelectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["last", "val", "test-best"] = "last"
    val_fraction: float = Field(0.1, gt=0.0, lt=1.0)  # val: share of training videos held out
    every: int = Field(100, ge=1)  # val / test-best: evaluate every this many steps


class TrainConfig(BaseModel):
    """The resolved settings of one training run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: Path  # feature store written by `wsvad extract`
    out: Path  # run directory
    dataset: str | None = None  # adapter name: labels come from it instead of the store attrs
    root: Path | None = None  # dataset root for the adapter
    detector: DetectorConfig = DetectorConfig()
    bags: BagConfig = BagConfig()
    # each crop a sample (separate), their mean (mean), or all crops inside one sample (inside:
    # detectors with a crops_inside param, i.e. rtfm); default separate
    crop_mode: CropMode | None = None
    # score test videos' raw snippets or their T bags; default snippets
    score_on: ScoreOn | None = None
    # per-dimension feature normalisation fitted on the training snippets (wsvad.scoring.recipe):
    # mean = (x - mu) / (max - min) (CLAWS sec. 4.3), center = x - mu; default none
    feature_norm: FeatureNormKind | None = None
    sampler: SamplerConfig = SamplerConfig()
    optim: OptimConfig = OptimConfig()
    iterations: int | None = Field(None, ge=1)  # optimizer steps (exclusive with epochs)
    epochs: int | None = Field(None, ge=1)  # passes of the sampler over the training set
    seed: int = 0
    seeds: list[int] | None = None  # several seeds: one run per seed under out/seed-<k>/
    selection: SelectionConfig = SelectionConfig()
    log_every: int = Field(10, ge=1)  # steps between log.jsonl lines
    checkpoint_every: int = Field(200, ge=1)  # steps between checkpoints/last.*
    device: Device = "cpu"  # cpu | cuda | cuda:N
    # bf16: autocast of forward+loss (faster on CPUs with bf16 units)
    precision: Literal["fp32", "bf16"] = "fp32"

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.iterations is not None and self.epochs is not None:
            raise ValueError("set either iterations or epochs, not both")
        if (self.dataset is None) != (self.root is None):
            raise ValueError("dataset and root go together (labels from the dataset adapter)")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        return self


GENERIC_DEFAULTS: dict[str, Any] = {
    "optim": {
        "name": "adam",
        "lr": 1.0e-3,
        "weight_decay": 0.0,
        "momentum": 0.0,
        "lr_milestones": [],
        "lr_gamma": 0.1,
    },
    "sampler": {"batch_per_class": 30, "window": 64, "windows_per_step": 1},
    "bags": {"rule": "rtfm", "pool": "mean", "count": 32},
    "iterations": 1000,
    "crop_mode": "separate",
    "score_on": "snippets",
    "feature_norm": "none",
}
SECTIONS = ("optim", "sampler", "bags")
TOP_LEVEL = ("crop_mode", "score_on", "feature_norm")


def resolve(cfg: TrainConfig, detector_defaults: dict[str, Any]) -> TrainConfig:
    """Fill the keys left ``None`` from the detector's ``train_defaults``, then the generic ones."""
    data = cfg.model_dump(mode="json")
    for section in SECTIONS:
        for key in set(GENERIC_DEFAULTS[section]) | set(detector_defaults.get(section, {})):
            if data[section].get(key) is None:
                data[section][key] = detector_defaults.get(section, {}).get(
                    key, GENERIC_DEFAULTS[section].get(key)
                )
    for key in TOP_LEVEL:
        if data[key] is None:
            data[key] = detector_defaults.get(key, GENERIC_DEFAULTS[key])
    if data["iterations"] is None and data["epochs"] is None:
        data["iterations"] = detector_defaults.get("iterations", GENERIC_DEFAULTS["iterations"])
    return TrainConfig.model_validate(data)


def with_seed(cfg: TrainConfig, seed: int, out: Path) -> TrainConfig:
    """The single-seed config of one member of a multi-seed run."""
    return cfg.model_copy(update={"seed": seed, "seeds": None, "out": out})
