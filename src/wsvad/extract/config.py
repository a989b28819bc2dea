"""The extract stage's config: YAML under configs/extract/, every key overridable from the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wsvad.config import Device
from wsvad.errors import WsvadError
from wsvad.extract.crops import check_resize
from wsvad.extract.decode import DecoderChoice
from wsvad.extract.snippets import Tail
from wsvad.pipeline.bags import BagRule
from wsvad.pipeline.cluster import ClusterConfig

# Keys that change the numbers in the store; the rest (paths, decoder, device, parallelism) do not,
# so a store can be resumed on another machine, with another decoder, or on a GPU.
FEATURE_KEYS = (
    "dataset",
    "backbone",
    "backbone_options",
    "snippet_len",
    "stride",
    "tail",
    "resize",
    "crop_size",
    "crops",
    "fps",
    "dtype",
)


class ExtractConfig(BaseModel):
    """Videos -> snippet features in a zarr store. ``None`` values take the backbone's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = "folder"  # dataset adapter (wsvad datasets lists them)
    root: Path | None = None  # dataset root folder
    out: Path | None = None  # the feature store to write
    split: Literal["train", "test", "all"] = "all"  # which videos of the dataset
    # skip videos the dataset check reports as errors instead of refusing
    skip_invalid: bool = False
    backbone: str = "i3d"  # backbone registry key (wsvad backbones lists them)
    backbone_options: dict[str, Any] = Field(default_factory=dict)  # passed to the backbone builder
    device: Device = "cpu"  # cpu | cuda | cuda:N
    decoder: DecoderChoice = "auto"  # auto: decord, PyAV when decord fails
    fps: float | None = Field(None, gt=0)  # resample to this frame rate; None: native
    snippet_len: int | None = Field(None, ge=1)  # frames per snippet; None: backbone default (16)
    stride: int | None = Field(None, ge=1)  # frames between snippet starts; None: snippet_len
    tail: Tail = "pad"  # the last, incomplete snippet: drop | pad | loop
    resize: str | None = None  # short<N> or <W>x<H>; None: backbone default (short256 for i3d)
    crop_size: int | None = Field(None, ge=8)  # square crop side; None: backbone default (224)
    crops: Literal[1, 5, 10] = 10  # 1 centre, 5 corners+centre, 10 = 5 + flipped
    dtype: Literal["float32", "float16"] = "float32"  # stored feature dtype
    # reduce each video to this many segments (Sultani: 32); None: keep snippets
    segments: int | None = Field(None, ge=1)
    # segment boundaries (wsvad.pipeline.bags); sultani also L2-normalises
    segment_rule: BagRule = "sultani"
    overwrite: bool = False  # replace a store made with a different config
    batch_clips: int = Field(10, ge=1)  # clips (snippet x crop) per forward pass
    prefetch: int = Field(2, ge=1)  # batches decoded ahead of the model
    chunk_t: int = Field(64, ge=1)  # snippets per zarr chunk
    piece_snippets: int = Field(512, ge=0)  # split videos longer than this across workers; 0: never
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)  # where the work runs
    # model compute dtype (autocast); see docs/cluster.md
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False  # torch.compile the backbone (pays off on long GPU runs)
    shard: str | None = None  # "K/N": only shard K (0..N-1) of the sorted video ids (job arrays)
    # a video whose decoded length disagrees with its container's (truncated, dropped frames):
    # store it with a ``suspect`` attr and a warning, or record it failed (wsvad.data.suspects)
    on_suspect: Literal["store", "fail"] = "store"

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        if value is not None:
            match = re.fullmatch(r"(\d+)/(\d+)", value.strip())
            if not match or not int(match.group(1)) < int(match.group(2)):
                raise ValueError(f"shard must be K/N with 0 <= K < N, got {value!r}")
            value = f"{int(match.group(1))}/{int(match.group(2))}"
        return value

    @field_validator("resize")
    @classmethod
    def _resize(cls, value: str | None) -> str | None:
        return None if value is None else check_resize(value)

    @model_validator(mode="after")
    def _fp16_needs_cuda(self) -> ExtractConfig:
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError(
                "precision fp16 needs a CUDA device (CPU fp16 convolutions need avx512_fp16); "
                "on CPU use bf16"
            )
        return self

    @model_validator(mode="after")
    def _gpus_need_cuda(self) -> ExtractConfig:
        if self.cluster.gpus_per_node and self.device != "cuda":
            raise ValueError(
                f"cluster.gpus_per_node needs device 'cuda' (each worker's cuda is its own GPU), "
                f"got {self.device!r}"
            )
        return self

    @model_validator(mode="after")
    def _crop_fits(self) -> ExtractConfig:
        fixed = re.fullmatch(r"(\d+)x(\d+)", self.resize or "")
        short = re.fullmatch(r"short(\d+)", self.resize or "")
        side = (
            min(int(fixed.group(1)), int(fixed.group(2)))
            if fixed
            else int(short.group(1))
            if short
            else None
        )
        if side is not None and self.crop_size is not None and self.crop_size > side:
            raise ValueError(
                f"crop_size {self.crop_size} does not fit frames resized to {self.resize}"
            )
        return self

    @property
    def torch_threads(self) -> int:
        return self.cluster.compute_threads

    def feature_config(self) -> dict[str, Any]:
        """The part of the resolved config that determines the features (hashed into the store)."""
        data = self.model_dump(mode="json")
        features = {key: data[key] for key in FEATURE_KEYS}
        # a weights file counts by its checksum (store attr weights_sha256), not by where it lies
        features["backbone_options"] = {
            k: v for k, v in data["backbone_options"].items() if k != "weights"
        }
        # reduced precision changes the numbers; fp32 keeps older hashes valid
        if self.precision != "fp32":
            features["precision"] = self.precision
        # hashed only when set, so stores of raw snippets keep their hashes
        if self.segments is not None:
            features.update(segments=self.segments, segment_rule=self.segment_rule)
        return features


def resolve_config(cfg: ExtractConfig) -> ExtractConfig:
    """Fill the backbone defaults (snippet length, stride, resize, crop size) so every value is
    explicit."""
    from wsvad.extract.backbones import get_backbone_spec

    spec = get_backbone_spec(cfg.backbone, **cfg.backbone_options)
    if spec.snippet_len_fixed and cfg.snippet_len not in (None, spec.snippet_len):
        # e.g. temporal I3D: another length would give another number of time steps than
        # feature_shape says
        options = ", ".join(f"{k}={v}" for k, v in spec.options.items())
        raise WsvadError(
            f"backbone {cfg.backbone} ({options}) needs {spec.snippet_len}-frame snippets "
            f"(features {list(spec.feature_shape)} per snippet), got snippet_len "
            f"{cfg.snippet_len}; leave it unset or use {spec.snippet_len}"
        )
    snippet_len = cfg.snippet_len or spec.snippet_len
    values = cfg.model_dump()
    values.update(
        snippet_len=snippet_len,
        stride=cfg.stride or snippet_len,
        resize=cfg.resize or spec.resize,
        crop_size=cfg.crop_size or spec.crop_size,
    )
    return ExtractConfig.model_validate(values)
