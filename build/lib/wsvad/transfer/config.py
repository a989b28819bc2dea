"""Typed configs of ``wsvad import`` and ``wsvad export``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Format = Literal["crops-per-file", "rtfm", "sultani-c3d", "video-features", "vggish"]


class ListFile(BaseModel):
    """A published feature list; ``split`` None means "from the file name" (``test`` in it ->
    test)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    split: Literal["train", "test"] | None = None


class ImportConfig(BaseModel):
    """What ``wsvad import`` reads and where it writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Format
    features_root: Path  # folder holding the published files (searched recursively by file name)
    out: Path  # the store to write
    lists: list[ListFile] = []  # published lists; empty = every file of the format under the root
    dataset: str | None = None  # adapter giving labels, splits and frame GT (wsvad.data)
    root: Path | None = None  # the dataset's root (videos or list/annotation files)
    dataset_options: dict[str, Any] = {}  # extra keyword options of the dataset adapter
    # video-features: the output key in <video>_<key>.npy (rgb, flow, vggish, r21d...)
    stream: str = "rgb"
    publisher_backbone: str | None = None  # overrides the format's default provenance text
    snippet_len: int | None = Field(None, ge=1)  # frames per published snippet; format default
    stride: int | None = Field(None, ge=1)  # frames between snippet starts; format default
    # Count the frames of the dataset's videos (else n_frames is estimated from T).
    probe_frames: bool = False
    checksum: Literal["sha256", "stat"] = "sha256"  # file fingerprint: content hash or size+mtime
    workers: int = Field(2, ge=1)  # threads importing videos at once
    overwrite: bool = False  # replace a store made with a different import config

    @model_validator(mode="after")
    def _check(self) -> ImportConfig:
        if self.dataset is not None and self.root is None:
            raise ValueError("--dataset needs --root (the dataset's folder)")
        if self.root is not None and self.dataset is None:
            raise ValueError("--root is only used with --dataset")
        if not self.lists and self.dataset is None:
            raise ValueError(
                "give --list files (their names give the split) "
                "or --dataset/--root (splits from the dataset)"
            )
        return self


class ExportConfig(BaseModel):
    """What ``wsvad export`` writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: Path  # the feature store to read
    format: Literal["crops-per-file", "rtfm", "video-features", "vggish"]
    out: Path  # folder for the feature files and list files
    stream: str = "rgb"  # video-features: the output key written as <video>_<key>.npy
    path_prefix: str | None = None  # prefix written in list files instead of the absolute --out
    split: Literal["train", "test"] | None = None  # export only one split (default: all videos)


class ConcatConfig(BaseModel):
    """What ``wsvad concat`` joins: a video store and an audio store of the same videos."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Exactly two, any order: the one with attr modality "audio" is the audio store.
    stores: list[Path]
    out: Path  # the concatenated store to write (resumed if it exists with the same inputs)
    overwrite: bool = False  # replace a store built from other inputs

    @model_validator(mode="after")
    def _two(self) -> ConcatConfig:
        if len(self.stores) != 2:
            raise ValueError(
                "give exactly two --store (a video store and an audio store), "
                f"got {len(self.stores)}"
            )
        return self
