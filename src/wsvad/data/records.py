"""The records every dataset adapter produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Interval = tuple[int, int]


@dataclass(frozen=True)
class VideoRecord:
    """One video of a dataset.

    Attributes:
        video_id: unique id, e.g. ``Abuse028_x264``, ``01_0014``, an XD name without ``.mp4``.
        path: absolute path to the video file or to its folder of frame images.
        rel_path: path relative to the dataset root, POSIX separators.
        split: ``"train"`` or ``"test"``.
        label: video-level label, 0 normal, 1 abnormal; -1 unknown (only the ``folder`` adapter, for
            videos that no ``labels.csv`` labels: usable for extraction and scoring, not for training).
        classes: anomaly classes (``()`` for normal videos; XD-Violence may list several).
        intervals: test videos: anomalous frames as half-open ``[start, end)`` intervals; ``None`` for
            training videos (whose frame labels are unknown).
        fps: frames per second when the dataset states it (frame folders), else ``None``.
        n_frames: the frame count when the dataset's own files state it without the video (a
            ShanghaiTech mask's length, UR-DMU's UCF annotation column), else ``None``.
    """

    video_id: str
    path: Path
    rel_path: str
    split: Literal["train", "test"]
    label: int
    classes: tuple[str, ...] = ()
    intervals: tuple[Interval, ...] | None = None
    fps: float | None = None
    n_frames: int | None = None

    def to_attrs(self) -> dict:
        """The plain-JSON label facts copied into the store's per-video attrs."""
        return {
            "split": self.split,
            "label": int(self.label),
            "classes": list(self.classes),
            "intervals": None if self.intervals is None else [list(iv) for iv in self.intervals],
        }


@dataclass(frozen=True)
class Problem:
    """One inconsistency found in a dataset layout (shown by ``wsvad check``)."""

    severity: Literal["error", "warning"]
    kind: str
    message: str
    video_id: str | None = None
    path: str | None = None


@dataclass
class DatasetIndex:
    """A parsed dataset: its records, the problems found while parsing, and its class names."""

    name: str
    root: Path
    records: list[VideoRecord]
    problems: list[Problem] = field(default_factory=list)
    class_names: list[str] = field(default_factory=lambda: ["Normal"])

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def by_id(self) -> dict[str, VideoRecord]:
        return {r.video_id: r for r in self.records}

    def split(self, name: str) -> list[VideoRecord]:
        return [r for r in self.records if r.split == name]
