"""Frame-level ground truth and the rules that align snippet scores with it.

A detector scores snippets; frame-level AUC needs one score per frame. Two alignment rules exist:

* ``"true-frames"`` (the wsvad default, :data:`DEFAULT_ALIGNMENT`): every frame of the video gets
  the score of the snippet it starts in (frame ``f`` -> snippet ``min(f // stride, N - 1)``);
  frames past the last snippet (the tail that did not fill a snippet) take the last score. Scores
  and ground truth both have the video's true frame count, so no frame is invented or dropped.
* ``"rtfm"``: the common protocol of RTFM / UR-DMU / MGFN: each snippet score is repeated
  ``stride`` (16) times, giving ``N * 16`` frame scores, and the ground truth is cut to that length
  or padded with its last value (RTFM's ``make_gt_sh.py``) when the video is shorter. Use it to
  compare with published numbers; it drops the tail frames of every video that does not fill a
  snippet.
* ``"rtfm-ucf"``: RTFM's UCF-Crime variant (``list/make_gt_ucf.py``): scores repeated ``stride``
  times as for ``"rtfm"``, but the ground truth is drawn from the annotated intervals directly on
  the ``N * stride`` frames, so frames past the video's end are normal (``"rtfm"`` pads with the
  last label) and the true frame count plays no part.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

AlignmentRule = Literal["true-frames", "rtfm", "rtfm-ucf"]
ALIGNMENT_RULES: tuple[str, ...] = ("true-frames", "rtfm", "rtfm-ucf")
DEFAULT_ALIGNMENT: AlignmentRule = "true-frames"


def frame_labels(
    intervals: Sequence[tuple[int, int]] | None, n_frames: int, video_id: str = ""
) -> np.ndarray:
    """Per-frame 0/1 labels of a video from its half-open anomalous intervals.

    Intervals reaching past the video are clipped to ``n_frames`` with a logged warning (seven
    official UCF-Crime annotations end one or two frames after the last frame).

    Args:
        intervals: ``[(start, end), ...]`` half-open frame intervals; ``()`` for a normal video.
        n_frames: the video's true (decoded) frame count.
        video_id: named in warnings and errors.

    Returns:
        uint8 array ``[n_frames]``, 1 on anomalous frames.

    >>> frame_labels([(2, 4), (6, 9)], 8).tolist()
    [0, 0, 1, 1, 0, 0, 1, 1]
    """
    name = video_id or "video"
    if intervals is None:
        raise ValueError(
            f"{name}: no frame-level annotation "
            "(training videos and unlabelled folder videos have none)"
        )
    if n_frames < 0:
        raise ValueError(f"{name}: n_frames must be >= 0, got {n_frames}")
    labels = np.zeros(n_frames, dtype=np.uint8)
    for start, end in intervals:
        if start < 0 or end < start:
            raise ValueError(f"{name}: invalid interval [{start}, {end})")
        if end > n_frames:
            log.warning(
                "%s: interval [%d, %d) ends past the last frame (%d frames); clipped",
                name,
                start,
                end,
                n_frames,
            )
        labels[min(start, n_frames) : min(end, n_frames)] = 1
    return labels


def snippet_scores_to_frames(
    scores: np.ndarray,
    n_frames: int,
    snippet_len: int = 16,
    stride: int = 16,
    rule: AlignmentRule = DEFAULT_ALIGNMENT,
    gt: np.ndarray | None = None,
    intervals: Sequence[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Frame scores from snippet scores, and the ground truth they are to be compared with.

    Args:
        scores: ``[N]`` snippet scores; snippet ``i`` covers frames
            ``[i*stride, i*stride + snippet_len)``.
        n_frames: the video's true frame count.
        snippet_len: frames per snippet (16 for I3D).
        stride: frames between snippet starts.
        rule: ``"true-frames"`` or ``"rtfm"`` (see the module docstring).
        gt: optional ``[n_frames]`` frame labels (from :func:`frame_labels`); required for
            ``"rtfm"``.
        intervals: the half-open anomalous intervals; required for ``"rtfm-ucf"``.

    Returns:
        ``(frame_scores, frame_gt)``: float32 ``[n_frames]`` and ``gt`` unchanged for
        ``"true-frames"``; float32 ``[N * stride]`` and ``gt`` cut or padded with its last value to
        ``N * stride`` for ``"rtfm"``; for ``"rtfm-ucf"`` the same scores and the intervals drawn
        on ``N * stride`` frames.

    >>> snippet_scores_to_frames(np.array([0.25, 0.75]), 5, snippet_len=2, stride=2)[0].tolist()
    [0.25, 0.25, 0.75, 0.75, 0.75]
    """
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"scores must be a non-empty 1-D array, got shape {scores.shape}")
    if snippet_len < 1 or stride < 1:
        raise ValueError(f"snippet_len and stride must be >= 1, got {snippet_len} and {stride}")
    if gt is not None and len(gt) != n_frames:
        raise ValueError(f"gt has {len(gt)} frames but the video has {n_frames}")
    if rule == "true-frames":
        index = np.minimum(np.arange(n_frames) // stride, scores.size - 1)
        return scores[index], gt
    if rule == "rtfm":
        if gt is None:
            raise ValueError("rule 'rtfm' needs the frame ground truth (gt) to cut or pad it")
        frame_scores = np.repeat(scores, stride)
        length = frame_scores.size
        gt = np.asarray(gt)
        if gt.size >= length:
            aligned = gt[:length]
        else:
            fill = gt[-1] if gt.size else 0
            aligned = np.concatenate([gt, np.full(length - gt.size, fill, dtype=gt.dtype)])
        return frame_scores, aligned
    if rule == "rtfm-ucf":
        if intervals is None:
            raise ValueError("rule 'rtfm-ucf' needs the annotated intervals")
        frame_scores = np.repeat(scores, stride)
        return frame_scores, frame_labels_cut(intervals, frame_scores.size)
    raise ValueError(f"unknown alignment rule {rule!r}; known: {', '.join(ALIGNMENT_RULES)}")


def frame_labels_cut(intervals: Sequence[tuple[int, int]], length: int) -> np.ndarray:
    """0/1 labels of ``length`` frames, intervals reaching past them cut without a warning (the
    length is the protocol's, not the video's)."""
    labels = np.zeros(length, dtype=np.uint8)
    for start, end in intervals:
        labels[min(start, length) : min(end, length)] = 1
    return labels


def intervals_from_mask(mask: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Half-open runs of non-zero frames of a per-frame mask (ShanghaiTech ``test_frame_mask``).

    >>> intervals_from_mask(np.array([0, 1, 1, 0, 1]))
    ((1, 3), (4, 5))
    """
    flags = np.concatenate([[0], (np.asarray(mask).ravel() != 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flags))
    # The padding zeros close every run, so rises and falls pair up.
    return tuple((int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True))
