"""The evaluation protocol: snippet scores -> frame scores against frame ground truth, pooled.

The alignment rule (``Protocol.alignment``) is one of :mod:`wsvad.data.groundtruth`'s rules and is
printed next to every figure: ``true-frames`` (default: snippet scores spread over the video's true
frame count, ground truth of the true frame count), ``rtfm`` (each snippet score repeated
``stride`` = 16 times, ground truth cut to ``T*16`` frames or padded with its last label -- what
RTFM's ``test_10crop.py`` with ``gt-sh.npy`` and XDVioDet's ``make_gt.py`` compute) or
``rtfm-ucf`` (RTFM's ``make_gt_ucf.py``). ``--protocol authors`` picks the benchmark's rule
(:mod:`wsvad.evaluate.authors`).

Pooled metrics concatenate the frames of all test videos (the order does not matter for any of
them).
Per-class AUC for class ``c`` uses the frames of the videos of class ``c`` plus, by default, the
frames of every normal test video (``class_negatives="all_normal"``), so that each class AUC
measures the same thing as the overall AUC restricted to one anomaly type; ``"class_only"`` uses
only the class's own videos (their normal frames are the negatives). A multi-label XD-Violence
video counts for each of its classes. AnomalyCLIP's per-class AUC (one-vs-rest on per-frame class
probabilities) needs a classifier per frame and is not what a score-only detector can report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import numpy as np

from wsvad.data.groundtruth import (
    DEFAULT_ALIGNMENT,
    AlignmentRule,
    frame_labels,
    frame_labels_cut,
    snippet_scores_to_frames,
)
from wsvad.evaluate import metrics as M
from wsvad.evaluate.authors import ProtocolName

ClassNegatives = Literal["all_normal", "class_only"]


@dataclass(frozen=True)
class Protocol:
    """How snippet scores meet frame labels, and the fixed choices of the metrics."""

    alignment: AlignmentRule = DEFAULT_ALIGNMENT
    snippet_len: int = 16
    stride: int = 16
    threshold: float = 0.5  # false-alarm threshold on normal videos
    class_negatives: ClassNegatives = "all_normal"
    # Evaluated videos whose frame count is not a counted one (imported features, or no video
    # under the authors' protocol: T x stride), stated with the figures because under true-frames
    # the GT length, hence AUC and AP, depend on it.
    estimated_frame_counts: int = 0
    name: ProtocolName = "wsvad"  # "authors": the benchmark's public code (wsvad.evaluate.authors)
    reproduces: str | None = None  # the authors' code reproduced
    paper_figure: str | None = None  # metrics key of the figure the papers report

    def describe(self) -> str:
        """One line stating the protocol, printed and saved with the figures."""
        rule = _RULES[self.alignment].format(s=self.stride)
        negatives = (
            "its videos + all normal test videos"
            if self.class_negatives == "all_normal"
            else "its videos only"
        )
        text = (
            f"alignment={self.alignment} ({rule}); "
            f"FAR at score >= {self.threshold:g} on normal videos; per-class AUC on {negatives}"
        )
        if self.name == "authors":
            text = f"authors' protocol, reproduces {self.reproduces}: {text}"
        note = self.estimate_note()
        return f"{text}; {note}" if note else text

    def estimate_note(self) -> str | None:
        """The line that declares estimated frame counts, or ``None`` when there are none."""
        n = self.estimated_frame_counts
        if not n:
            return None
        if self.snippet_len != self.stride:
            return (
                f"frame counts of {n} videos are estimates ((T - 1) × {self.stride} + "
                f"{self.snippet_len}, no video to count)"
            )
        # On T x stride frames true-frames repeats each score stride times and cuts nothing.
        estimate = f"T × {self.stride}"
        return f"frame counts of {n} videos are estimates ({estimate}): true-frames = rtfm here"

    def to_json(self) -> dict:
        return asdict(self) | {
            "description": self.describe(),
            "estimate_note": self.estimate_note(),
        }


_RULES = {
    "true-frames": (
        "frame f scored by snippet min(f // {s}, T-1) over the true frame count; "
        "GT of the true frame count"
    ),
    "rtfm": "RTFM: each snippet score repeated {s}x; GT cut/padded to T x {s} frames",
    "rtfm-ucf": (
        "RTFM UCF: each snippet score repeated {s}x; GT drawn from the intervals on T x {s} "
        "frames, frames past the video normal"
    ),
}


class VideoTruth(NamedTuple):
    """The facts about one test video the protocol needs."""

    video_id: str
    n_frames: int | None  # None: unknown, evaluated on T x stride frames (authors' protocol)
    label: int  # 0 normal, 1 abnormal
    classes: tuple[str, ...] = ()
    intervals: tuple[tuple[int, int], ...] = ()  # half-open anomalous frame ranges


class AlignedVideo(NamedTuple):
    video_id: str
    label: int
    classes: tuple[str, ...]
    scores: np.ndarray  # (F,) frame scores under the protocol
    gt: np.ndarray  # (F,) uint8 frame labels under the protocol


def align_video(scores: np.ndarray, truth: VideoTruth, protocol: Protocol) -> AlignedVideo:
    """Frame scores and frame labels of one video under ``protocol`` (the rules of
    wsvad.data.groundtruth)."""
    scores = np.asarray(scores).reshape(-1)
    if truth.n_frames is None:  # the authors' T x stride frames, intervals past them cut
        n_frames = scores.size * protocol.stride
        gt = frame_labels_cut(truth.intervals, n_frames)
    else:
        n_frames = truth.n_frames
        gt = frame_labels(truth.intervals, n_frames, truth.video_id)
    frame_scores, frame_gt = snippet_scores_to_frames(
        scores,
        n_frames,
        protocol.snippet_len,
        protocol.stride,
        protocol.alignment,
        gt,
        truth.intervals,
    )
    return AlignedVideo(
        truth.video_id, int(truth.label), tuple(truth.classes), frame_scores, frame_gt
    )


class Pooled(NamedTuple):
    """All aligned frames concatenated; ``offsets[i]:offsets[i+1]`` are video ``i``'s frames."""

    scores: np.ndarray
    gt: np.ndarray
    offsets: np.ndarray
    videos: list[AlignedVideo]


def pool(videos: list[AlignedVideo]) -> Pooled:
    lengths = np.array([len(v.scores) for v in videos], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    scores = np.concatenate([v.scores for v in videos]) if videos else np.zeros(0)
    gt = np.concatenate([v.gt for v in videos]) if videos else np.zeros(0, np.uint8)
    return Pooled(scores, gt, offsets, videos)


def _nan_to_none(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def compute_metrics(
    pooled: Pooled,
    protocol: Protocol,
    class_names: list[str] | None = None,
    predicted_class: dict[str, int] | None = None,
) -> dict:
    """All figures of one evaluation (plain JSON; undefined figures are ``None``).

    Args:
        pooled: the aligned test videos.
        protocol: the protocol used to align them (for the threshold and per-class rule).
        class_names: dataset class names, ``class_names[0] == "Normal"``; enables per-class AUC.
        predicted_class: video id -> predicted class index, from a classification head; enables mAA.
    """
    videos = pooled.videos
    labels = np.array([v.label for v in videos], dtype=np.int64)
    # Each video compressed once; subsets are concatenations of these runs.
    runs = [M.compress_runs(v.gt, v.scores) for v in videos]
    everything = _subset(runs, np.ones(len(videos), dtype=bool))
    normal = labels == 0
    normal_scores = (
        np.concatenate([v.scores for v in videos if v.label == 0]) if normal.any() else np.zeros(0)
    )
    out: dict = {
        "auc": _nan_to_none(M.frame_roc_auc(everything)),
        "ap_sklearn": _nan_to_none(M.average_precision(everything)),
        "pr_auc_trapezoid": _nan_to_none(M.pr_auc_trapezoid(everything)),
        "far": _nan_to_none(M.false_alarm_rate(normal_scores, protocol.threshold)),
        "auc_abnormal_only": _nan_to_none(M.frame_roc_auc(_subset(runs, ~normal))),
        "n_videos": len(videos),
        "n_abnormal_videos": int((~normal).sum()),
        "n_frames": int(pooled.offsets[-1]),
        "n_anomalous_frames": int(pooled.gt.sum()),
    }
    if class_names is not None and len(class_names) > 1:
        out["per_class_auc"] = _per_class_auc(videos, runs, class_names, protocol.class_negatives)
    if predicted_class:
        out.update(_classification_accuracy(videos, predicted_class, class_names))
    return out


def _subset(runs: list[M.Weighted], keep: np.ndarray) -> M.Weighted:
    """The frames of the videos ``keep`` selects, from each video's compressed runs."""
    chosen = [r for r, k in zip(runs, keep, strict=True) if k]
    if not chosen:
        return M.Weighted(np.zeros(0, np.uint8), np.zeros(0), np.zeros(0))
    return M.Weighted(*(np.concatenate(arrays) for arrays in zip(*chosen, strict=True)))


def _per_class_auc(
    videos: list[AlignedVideo],
    runs: list[M.Weighted],
    class_names: list[str],
    class_negatives: ClassNegatives,
) -> dict[str, float | None]:
    """Frame AUC of each anomaly class present among the videos (see the module docstring for
    the negatives)."""
    normal = np.array([v.label == 0 for v in videos], dtype=bool)
    per_class = {}
    for name in class_names[1:]:
        of_class = np.array([name in v.classes for v in videos])
        if not of_class.any():
            continue
        keep = of_class | normal if class_negatives == "all_normal" else of_class
        per_class[name] = _nan_to_none(M.frame_roc_auc(_subset(runs, keep)))
    return per_class


def _classification_accuracy(
    videos: list[AlignedVideo], predicted_class: dict[str, int], class_names: list[str] | None
) -> dict:
    """``mAA`` and ``per_class_accuracy`` of the predicted video classes."""
    names = class_names or ["Normal"]
    index = {n: i for i, n in enumerate(names)}
    true_idx, pred_idx = [], []
    for v in videos:
        if v.video_id not in predicted_class:
            continue
        pred = int(predicted_class[v.video_id])
        options = [index[c] for c in v.classes if c in index] or [0]
        # A multi-label video is right when the prediction is any of its classes.
        true_idx.append(pred if pred in options else options[0])
        pred_idx.append(pred)
    maa, per = M.mean_average_accuracy(np.array(true_idx), np.array(pred_idx))
    return {
        "mAA": _nan_to_none(maa),
        "per_class_accuracy": {names[c] if c < len(names) else str(c): a for c, a in per.items()},
    }


def per_video_table(pooled: Pooled) -> list[dict]:
    """One row per video: frames, anomalous frames, mean/max score, AUC (abnormal videos) and
    the mean absolute error ``|score - label|`` used to pick the best and worst timelines."""
    rows = []
    for v in pooled.videos:
        rows.append(
            {
                "video_id": v.video_id,
                "label": v.label,
                "classes": list(v.classes),
                "n_frames": len(v.scores),
                "anomalous_frames": int(v.gt.sum()),
                "mean_score": float(v.scores.mean()) if len(v.scores) else None,
                "max_score": float(v.scores.max()) if len(v.scores) else None,
                "auc": _nan_to_none(M.frame_roc_auc(v.gt, v.scores)),
                "error": float(np.abs(v.scores - v.gt).mean()) if len(v.scores) else None,
            }
        )
    return rows
