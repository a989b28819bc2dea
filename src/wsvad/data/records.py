"""The records every dataset adapter produces and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

Interval = tuple[int, int]

Severity = Literal["error", "warning"]
"""An error leaves its video (or file) out of the index; a warning keeps it."""

# Every kind of problem an adapter or ``wsvad check`` reports, defined here once. Kinds are the
# stable names shown by ``wsvad check`` and compared by later stages, so they stay plain strings.
ProblemKind = Literal[
    # a file of the layout
    "missing-file",  # a list, annotation, labels or mask file is not there
    "unreadable-list",  # a list cannot be read or is not UTF-8
    "unreadable-annotation",  # the same for an annotation file
    "unreadable-mask",  # a ShanghaiTech frame mask cannot be loaded
    "bad-provenance",  # synth.json is unreadable
    # one line of a file
    "bad-list-line",  # not a video path or id, or a video whose class cannot be told
    "bad-annotation-line",  # not "<video> [<Class>] s1 e1 ..."
    "bad-labels-csv",  # labels.csv lacks its columns or a row has a bad label or split
    "bad-interval",  # an empty, reversed or negative interval
    "bad-name",  # an XD-Violence name without a valid "_label_" suffix
    "duplicate",  # a video listed or annotated twice
    # the videos on disk
    "missing-video",  # listed or labelled but not under the root
    "duplicate-file",  # found more than once under the root
    "video-not-on-disk",  # listed videos kept without their files (require_videos=False)
    "unlisted-video",  # on disk but in no split list
    "unlabelled-video",  # on disk but not in labels.csv
    "unknown-split",  # neither a list nor its folders tell the split
    # the labels
    "train-test-overlap",  # in both splits
    "missing-annotation",  # an abnormal test video without intervals
    "missing-mask",  # an abnormal ShanghaiTech video without its frame mask
    "annotated-not-in-test",  # annotated but not a test video
    "class-mismatch",  # the annotation and the list disagree on the class
    "normal-with-intervals",  # a normal video with anomalous intervals
    # frame counts (``wsvad check``)
    "unreadable-video",  # the frame count cannot be read
    "interval-outside-video",  # an interval starts after the last frame
    "interval-past-end",  # an interval ends past the last frame (clipped when labelling)
    "suspect-video",  # demuxes shorter or longer than its container declares (data/suspects.py)
]
SEVERITIES: frozenset[str] = frozenset(get_args(Severity))
PROBLEM_KINDS: frozenset[str] = frozenset(get_args(ProblemKind))


@dataclass(frozen=True)
class VideoRecord:
    """One video of a dataset.

    Attributes:
        video_id: unique id, e.g. ``Abuse028_x264``, ``01_0014``, an XD name without ``.mp4``.
        path: absolute path to the video file or to its folder of frame images.
        rel_path: path relative to the dataset root, POSIX separators.
        split: ``"train"`` or ``"test"``.
        label: video-level label, 0 normal, 1 abnormal; -1 unknown (only the ``folder`` adapter,
            for videos that no ``labels.csv`` labels: usable for extraction and scoring, not for
            training).
        classes: anomaly classes (``()`` for normal videos; XD-Violence may list several).
        intervals: test videos: anomalous frames as half-open ``[start, end)`` intervals; ``None``
            for training videos (whose frame labels are unknown).
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

    severity: Severity
    kind: ProblemKind
    message: str
    video_id: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        # The Literal types are checked here because nothing else checks them at run time: a
        # misspelt kind fails the first test that reaches it instead of reaching users.
        if self.severity not in SEVERITIES or self.kind not in PROBLEM_KINDS:
            raise ValueError(f"unknown problem severity or kind: {self.severity!r}, {self.kind!r}")


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
