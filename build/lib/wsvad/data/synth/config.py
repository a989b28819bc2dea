"""``SynthConfig``: what ``wsvad synth`` generates, with named size presets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from wsvad.data.synth.events import EVENTS

# "demo" is sized for `make demo`: 16 + 8 videos of 4-6 s at 160x120, 30 fps, i.e. about 3600
# frames, which a 1-crop I3D extraction at ~35 frames/s on 2 cores gets through in about 100 s. Only
# the three classes with strong motion are used, so a simple MIL detector separates them from normal
# walking. "tiny" is for tests: a handful of 1-2 s videos.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "demo": {
        "n_train": 16, "n_test": 8, "min_seconds": 4.0, "max_seconds": 6.0, "size": "160x120",
        "classes": ["Fighting", "Running", "Explosion"],
    },
    "tiny": {
        "n_train": 4, "n_test": 4, "min_seconds": 2.0, "max_seconds": 2.5, "size": "96x72",
        "fps": 24,
    },
}  # fmt: skip
_SIZE = re.compile(r"^(\d+)x(\d+)$")


class SynthConfig(BaseModel):
    """Parameters of a synthetic dataset; everything is deterministic given these values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out: Path
    preset: Literal["default", "demo", "tiny"] = "default"
    seed: int = 0
    n_train: int = Field(60, ge=2)
    n_test: int = Field(30, ge=2)
    min_seconds: float = Field(8.0, gt=0)
    max_seconds: float = Field(20.0, gt=0)
    size: str = "320x240"
    fps: int = Field(30, ge=4, le=120)
    crf: int = Field(23, ge=0, le=51)
    classes: list[str] = Field(default_factory=lambda: list(EVENTS))
    abnormal_fraction: float = Field(0.5, gt=0, lt=1)
    max_events: Literal[1, 2] = 2

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        # A preset supplies values for the keys that were not given, so explicit values always win.
        if isinstance(data, dict):
            preset = data.get("preset", "default")
            if preset in PRESETS:
                data = {**PRESETS[preset], **data}
        return data

    @field_validator("size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        match = _SIZE.match(value.strip())
        if not match:
            raise ValueError("must be WIDTHxHEIGHT, e.g. 320x240")
        w, h = int(match.group(1)), int(match.group(2))
        if w < 32 or h < 32 or w % 2 or h % 2:
            raise ValueError("width and height must be even and at least 32 (H.264 4:2:0)")
        return f"{w}x{h}"

    @field_validator("classes")
    @classmethod
    def _check_classes(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in EVENTS]
        if not value or unknown or len(set(value)) != len(value):
            raise ValueError(
                f"must be distinct names among {', '.join(EVENTS)}; "
                f"got {', '.join(value) or '(none)'}"
            )
        return value

    @model_validator(mode="after")
    def _check_durations(self) -> SynthConfig:
        if self.max_seconds < self.min_seconds:
            raise ValueError(
                f"max_seconds ({self.max_seconds}) is below min_seconds ({self.min_seconds})"
            )
        if self.min_seconds * self.fps < 48:
            raise ValueError(
                f"videos of {self.min_seconds} s at {self.fps} fps have under 48 frames: "
                "too short for events of several 16-frame snippets"
            )
        return self

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])
