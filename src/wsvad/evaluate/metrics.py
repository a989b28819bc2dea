"""Frame-level metrics of weakly-supervised video anomaly detection: arrays in, numbers out.

The figures are scikit-learn's definitions, computed in NumPy (:func:`_weighted_curve` is
sklearn's ``_binary_clf_curve``; tests/evaluate/test_eval_metrics.py checks equality with
sklearn within 1e-12 on tied, weighted inputs): importing sklearn costs more than the whole
UCF-Crime protocol, and its per-call input validation dominated the 290 per-video AUCs.
Frame arrays are run-length compressed into weighted samples first (:func:`compress_runs`): a
snippet score repeated over 16 frames with one label becomes one sample of weight 16, which gives
exactly the same ROC/PR curves as the repeated frames (sklearn accumulates ``sample_weight`` where
it would count samples) and makes the full UCF-Crime protocol (~1.1 M frames, 13 per-class
subsets) take a fraction of a second.

Two "AP" figures exist in the literature and both are reported, never mixed:

* :func:`average_precision` -- scikit-learn's ``average_precision_score`` (step-wise sum of
  precision over recall increments), the definition of average precision.
* :func:`pr_auc_trapezoid` -- ``auc(recall, precision)`` on ``precision_recall_curve``: the
  trapezoidal area that RTFM's ``test_10crop.py`` and the XD-Violence code call "AP". Linear
  interpolation between PR points is optimistic, so it is usually a little larger.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Weighted(NamedTuple):
    """Frames compressed into runs: ``labels[i]``/``scores[i]`` hold for ``weights[i]`` frames."""

    labels: np.ndarray  # (R,) uint8
    scores: np.ndarray  # (R,) float64
    weights: np.ndarray  # (R,) float64


def compress_runs(labels: np.ndarray, scores: np.ndarray) -> Weighted:
    """Merge consecutive frames that share both label and score into one weighted sample.

    Args:
        labels: ``(F,)`` 0/1 frame labels.
        scores: ``(F,)`` frame scores.

    Returns:
        The runs; curves computed with ``sample_weight=weights`` equal the curves of the frames.

    >>> compress_runs(np.array([0, 0, 1, 1, 1]), np.array([.2, .2, .2, .7, .7])).weights.tolist()
    [2.0, 1.0, 2.0]
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(
            f"labels {labels.shape} and scores {scores.shape} must be equal 1-D shapes"
        )
    if len(labels) == 0:
        return Weighted(labels.astype(np.uint8), scores, np.zeros(0))
    change = np.flatnonzero((labels[1:] != labels[:-1]) | (scores[1:] != scores[:-1])) + 1
    starts = np.concatenate(([0], change))
    weights = np.diff(np.concatenate((starts, [len(labels)]))).astype(np.float64)
    return Weighted(labels[starts].astype(np.uint8), scores[starts], weights)


def _as_weighted(labels: np.ndarray | Weighted, scores: np.ndarray | None) -> Weighted:
    if isinstance(labels, Weighted):
        return labels
    return compress_runs(labels, scores)


def _both_classes(w: Weighted) -> bool:
    present = np.unique(w.labels[w.weights > 0])
    return len(present) == 2


def _weighted_curve(w: Weighted) -> tuple[np.ndarray, np.ndarray]:
    """Weighted true and false positives at each distinct score, highest score first (sklearn's
    ``_binary_clf_curve`` with ``sample_weight``)."""
    order = np.argsort(w.scores, kind="mergesort")[::-1]
    scores, labels, weights = w.scores[order], w.labels[order], w.weights[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps = np.cumsum(labels * weights)[last_of_tie]
    fps = np.cumsum((1 - labels) * weights)[last_of_tie]
    return tps, fps


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.trapezoid(y, x))  # numpy >= 2 (np.trapz is its deprecated name)


def _precision_recall(w: Weighted) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's ``precision_recall_curve`` points: every distinct score, lowest first, then
    recall 0 with precision 1."""
    tps, fps = _weighted_curve(w)
    precision, recall = tps / (tps + fps), tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def frame_roc_auc(labels: np.ndarray | Weighted, scores: np.ndarray | None = None) -> float:
    """Area under the frame-level ROC curve; NaN when only one class is present (undefined).

    >>> frame_roc_auc(np.array([0, 0, 1, 1]), np.array([.1, .4, .35, .8]))
    0.75
    """
    w = _as_weighted(labels, scores)
    if not _both_classes(w):
        return float("nan")
    tps, fps = _weighted_curve(w)
    return _trapezoid(np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]])


def average_precision(labels: np.ndarray | Weighted, scores: np.ndarray | None = None) -> float:
    """scikit-learn's average precision (step-wise, no interpolation); NaN without positives."""
    w = _as_weighted(labels, scores)
    if not _both_classes(w):
        return float("nan")
    precision, recall = _precision_recall(w)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def pr_auc_trapezoid(labels: np.ndarray | Weighted, scores: np.ndarray | None = None) -> float:
    """Trapezoidal area under the PR curve, ``auc(recall, precision)`` (the RTFM/XD "AP")."""
    w = _as_weighted(labels, scores)
    if not _both_classes(w):
        return float("nan")
    precision, recall = _precision_recall(w)
    # sklearn's auc() on a decreasing x: the area with its sign flipped
    return -_trapezoid(recall, precision)


def false_alarm_rate(normal_scores: np.ndarray, threshold: float = 0.5) -> float:
    """Share of frames of normal videos scored ``>= threshold`` (Sultani et al.'s FAR at 50 %).

    Args:
        normal_scores: ``(F,)`` frame scores of the normal test videos only.
        threshold: decision threshold; published code binarises with ``score >= threshold``.
    """
    normal_scores = np.asarray(normal_scores)
    if normal_scores.size == 0:
        return float("nan")
    return float(np.count_nonzero(normal_scores >= threshold) / normal_scores.size)


def roc_points(
    labels: np.ndarray | Weighted, scores: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` of the frame-level ROC curve (for plots)."""
    w = _as_weighted(labels, scores)
    tps, fps = _weighted_curve(w)
    # sklearn's drop_intermediate: keep the corners of the curve, drop collinear points (a curve
    # of one or two thresholds, e.g. a collapsed model's constant scores, has only corners)
    if len(fps) > 2:
        corners = np.flatnonzero(
            np.r_[True, np.diff(fps, 2) != 0, True] | np.r_[True, np.diff(tps, 2) != 0, True]
        )
        fps, tps = fps[corners], tps[corners]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    # NaN for an absent class, as sklearn: the counts are cumulative, so the last is their largest
    # and the only division by zero is 0 / 0 (numpy's "invalid", never "divide")
    with np.errstate(invalid="ignore"):
        return fps / fps[-1], tps / tps[-1]


def pr_points(
    labels: np.ndarray | Weighted, scores: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(recall, precision)`` of the frame-level PR curve (for plots)."""
    precision, recall = _precision_recall(_as_weighted(labels, scores))
    return recall, precision


def mean_average_accuracy(
    true_class: np.ndarray, pred_class: np.ndarray
) -> tuple[float, dict[int, float]]:
    """Mean over classes of the per-class accuracy of video classification (mAA; Majhi et al.,
    FG 2021, "joint detection and classification", §IV).

    That paper "obtains the average accuracy for each class and reports the mean of all average
    accuracies". Per class ``c`` that is the share of the test videos of class ``c`` predicted as
    ``c``; the mean runs over every class present among the test videos, Normal included (the
    classifier has C+1 outputs). It equals sklearn's ``balanced_accuracy_score``.

    Args:
        true_class: ``(V,)`` class index of each test video (0 = Normal).
        pred_class: ``(V,)`` predicted class index (argmax of the classification head).

    Returns:
        ``(mAA, {class index: accuracy})``.

    >>> mean_average_accuracy(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]))[0]
    0.5
    """
    true_class = np.asarray(true_class, dtype=np.int64)
    pred_class = np.asarray(pred_class, dtype=np.int64)
    if true_class.shape != pred_class.shape or true_class.ndim != 1:
        raise ValueError(
            f"true {true_class.shape} and predicted {pred_class.shape} classes "
            "must be equal 1-D shapes"
        )
    if true_class.size == 0:
        return float("nan"), {}
    per_class = {
        int(c): float(np.mean(pred_class[true_class == c] == c)) for c in np.unique(true_class)
    }
    return float(np.mean(list(per_class.values()))), per_class
