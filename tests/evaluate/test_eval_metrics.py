"""Hand-worked cases for every metric, and agreement with scikit-learn on frame arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from wsvad.evaluate import metrics as M

# 8 frames: positives score .35 .8 .7; negatives .1 .4 .2 .9 .3.
Y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
S = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.7, 0.9, 0.3])


def test_roc_auc_hand_worked():
    # Pairs won by a positive: .35 beats 3 negatives, .8 beats 4, .7 beats 4 -> 11 of 3 x 5.
    assert M.frame_roc_auc(Y, S) == pytest.approx(11 / 15)


def test_roc_auc_counts_ties_as_half():
    # Positive .5 ties the negative .5 and beats .2: (1 + 0.5) / 2.
    assert M.frame_roc_auc(np.array([1, 0, 0]), np.array([0.5, 0.5, 0.2])) == pytest.approx(0.75)


def test_average_precision_hand_worked():
    # Ranked: .9(n) .8(p) .7(p) .4(n) .35(p): recall steps of 1/3 at precisions 1/2, 2/3, 3/5.
    assert M.average_precision(Y, S) == pytest.approx((1 / 2 + 2 / 3 + 3 / 5) / 3)


def test_trapezoid_pr_auc_differs_from_average_precision():
    # PR points (recall, precision): (1, 3/5) (2/3, 2/4) (2/3, 2/3) (1/3, 1/2) (0, 0) (0, 1).
    # Trapezoids: 1/3*(.6+.5)/2 + 1/3*(2/3+1/2)/2 + 1/3*(1/2+0)/2 = 83/180, while AP = 53/90.
    trapezoid = M.pr_auc_trapezoid(Y, S)
    assert trapezoid == pytest.approx(83 / 180)
    assert M.average_precision(Y, S) == pytest.approx(106 / 180)
    assert abs(trapezoid - M.average_precision(Y, S)) > 0.1


def test_false_alarm_rate_counts_scores_at_the_threshold():
    assert M.false_alarm_rate(np.array([0.1, 0.5, 0.7, 0.2, 0.49, 0.0]), 0.5) == pytest.approx(
        2 / 6
    )
    assert M.false_alarm_rate(np.array([0.1, 0.5, 0.7, 0.2, 0.49, 0.0]), 0.8) == 0.0
    assert math.isnan(M.false_alarm_rate(np.array([])))


def test_metrics_undefined_with_one_class_are_nan():
    assert math.isnan(M.frame_roc_auc(np.zeros(6), np.linspace(0, 1, 6)))
    assert math.isnan(M.average_precision(np.zeros(6), np.linspace(0, 1, 6)))
    assert math.isnan(M.pr_auc_trapezoid(np.ones(6), np.linspace(0, 1, 6)))


def test_mean_average_accuracy_hand_worked():
    # Normal 1/2 right, class 1 2/2, class 2 1/2 -> mean 2/3 (equal to the overall accuracy 4/6
    # here; the unbalanced case below tells them apart).
    maa, per = M.mean_average_accuracy(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 0, 2]))
    assert maa == pytest.approx(2 / 3)
    assert per == {0: 0.5, 1: 1.0, 2: 0.5}
    maa, _ = M.mean_average_accuracy(np.array([0, 0, 0, 0, 1]), np.array([0, 0, 0, 0, 0]))
    assert maa == pytest.approx(0.5)  # overall accuracy would be 0.8


def test_mean_average_accuracy_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"true \(3,\) and predicted \(2,\)"):
        M.mean_average_accuracy(np.array([0, 1, 2]), np.array([0, 1]))


def test_compress_runs_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"labels \(3,\) and scores \(2,\)"):
        M.compress_runs(np.array([0, 1, 1]), np.array([0.1, 0.2]))


def test_compressed_curves_equal_sklearn_on_repeated_frames():
    rng = np.random.default_rng(3)
    snippet = rng.random(400).round(2)  # rounding creates ties across snippets
    scores = np.repeat(snippet, 16)
    labels = np.zeros(scores.size, dtype=np.uint8)
    for start in rng.integers(0, scores.size - 300, 12):
        labels[start : start + int(rng.integers(20, 300))] = 1
    runs = M.compress_runs(labels, scores)
    assert runs.weights.sum() == scores.size
    assert len(runs.weights) < scores.size / 8
    assert M.frame_roc_auc(runs) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert M.average_precision(runs) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )
    precision, recall, _ = precision_recall_curve(labels, scores)
    assert M.pr_auc_trapezoid(runs) == pytest.approx(auc(recall, precision), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_numpy_metrics_equal_sklearn_on_tied_weighted_inputs(seed):
    """frame_roc_auc, average_precision and pr_auc_trapezoid are sklearn's figures, computed in
    NumPy: equal within 1e-12 on scores with many ties, weighted runs and unweighted frames."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    labels = (rng.random(n) < rng.uniform(0.05, 0.9)).astype(np.uint8)
    labels[:2] = (0, 1)
    scores = np.round(rng.random(n), int(rng.integers(1, 4)))  # 10 to 1000 levels: ties
    weights = rng.integers(1, 40, n).astype(np.float64)
    w = M.Weighted(labels, scores, weights)
    precision, recall, _ = precision_recall_curve(labels, scores, sample_weight=weights)
    expected = {
        "auc": roc_auc_score(labels, scores, sample_weight=weights),
        "ap": average_precision_score(labels, scores, sample_weight=weights),
        "trapz": auc(recall, precision),
        "auc_frames": roc_auc_score(labels, scores),
    }
    got = {
        "auc": M.frame_roc_auc(w),
        "ap": M.average_precision(w),
        "trapz": M.pr_auc_trapezoid(w),
        "auc_frames": M.frame_roc_auc(labels, scores),
    }
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=0, abs=1e-12), key
    fpr, tpr, _ = roc_curve(labels, scores, sample_weight=weights)
    for ours, theirs in zip(
        (*M.roc_points(w), *M.pr_points(w)), (fpr, tpr, recall, precision), strict=True
    ):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("levels", [1, 2])
def test_curve_points_of_one_or_two_distinct_scores_equal_sklearn(levels):
    """A collapsed model scores every frame alike: the ROC curve has one or two thresholds, no
    intermediate point to drop (an IndexError once made `wsvad evaluate` fail on such runs)."""
    labels = np.array([0, 1, 0, 1, 1, 0], dtype=np.uint8)
    scores = np.array([0.0, 0.0, 0.0, 0.5, 0.0, 0.5])[: len(labels)] * (levels - 1)
    fpr, tpr, _ = roc_curve(labels, scores)
    ours = M.roc_points(labels, scores)
    np.testing.assert_allclose(ours[0], fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[1], tpr, rtol=0, atol=1e-12)


def test_roc_points_drops_the_collinear_middle_of_a_three_threshold_curve():
    """One normal and one anomalous frame at each of three scores: the three corners
    (1/3, 1/3), (2/3, 2/3), (1, 1) lie on one line and sklearn drops the middle one."""
    labels, scores = np.array([0, 1, 0, 1, 0, 1]), np.array([0.9, 0.9, 0.5, 0.5, 0.1, 0.1])
    fpr, tpr, _ = roc_curve(labels, scores)
    ours = M.roc_points(labels, scores)
    np.testing.assert_allclose(ours[0], [0, 1 / 3, 1])
    np.testing.assert_allclose(ours[0], fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[1], tpr, rtol=0, atol=1e-12)


def test_roc_points_of_an_absent_class_are_nan_without_a_warning():
    """A test split without anomalous frames has no ROC: NaN true-positive rates, as sklearn's
    points, and no RuntimeWarning on the way (evaluate runs per class with warnings shown)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fpr, tpr = M.roc_points(np.zeros(4, dtype=np.uint8), np.array([0.1, 0.2, 0.3, 0.4]))
    assert np.isnan(tpr).all()
    np.testing.assert_allclose(fpr, [0, 0.25, 1])


def test_a_class_present_only_with_zero_weight_is_absent():
    """Weighted frames of weight 0 do not make a class present: AUC, AP and PR-AUC are NaN at
    once (no 0/0 on the way, so no RuntimeWarning), as for a split without that class."""
    w = M.Weighted(np.array([0, 1, 0], np.uint8), np.array([0.2, 0.9, 0.4]), np.array([1.0, 0, 2]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures = [M.frame_roc_auc(w), M.average_precision(w), M.pr_auc_trapezoid(w)]
    assert all(math.isnan(f) for f in figures)


# Four frames for the plot curves: ranked .8(p) .4(n) .35(p) .1(n).
Y4 = np.array([0, 0, 1, 1])
S4 = np.array([0.1, 0.4, 0.35, 0.8])


def test_roc_points_hand_worked():
    # Thresholds inf, .8, .4, .35, .1: (fpr, tpr) = (0,0) (0,.5) (.5,.5) (.5,1) (1,1).
    fpr, tpr = M.roc_points(Y4, S4)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])


def test_pr_points_hand_worked_recall_first():
    # Thresholds .1, .35, .4, .8 then the (0, 1) end: recall 1, 1, .5, .5, 0 at precision
    # 2/4, 2/3, 1/2, 1/1, 1.
    recall, precision = M.pr_points(Y4, S4)
    np.testing.assert_allclose(recall, [1, 1, 0.5, 0.5, 0])
    np.testing.assert_allclose(precision, [0.5, 2 / 3, 0.5, 1, 1])


def test_plot_curves_of_runs_equal_the_curves_of_repeated_frames():
    labels, scores = np.repeat(Y4, [3, 1, 2, 5]), np.repeat(S4, [3, 1, 2, 5])
    runs = M.compress_runs(labels, scores)
    for curve in (M.roc_points, M.pr_points):
        for got, want in zip(curve(runs), curve(labels, scores), strict=True):
            np.testing.assert_allclose(got, want)
    # 3 negatives at .1, 1 at .4, 2 positives at .35, 5 at .8: fpr steps of 1/4, tpr of 5/7.
    fpr, tpr = M.roc_points(runs)
    np.testing.assert_allclose(fpr, [0, 0, 0.25, 0.25, 1])
    np.testing.assert_allclose(tpr, [0, 5 / 7, 5 / 7, 1, 1])
    # Thresholds .1, .35, .4, .8: 7 of 11, 7 of 8, 5 of 6, 5 of 5 frames above are positive.
    recall, precision = M.pr_points(runs)
    np.testing.assert_allclose(recall, [1, 1, 5 / 7, 5 / 7, 0])
    np.testing.assert_allclose(precision, [7 / 11, 7 / 8, 5 / 6, 1, 1])


def test_compress_runs_splits_on_a_label_change_or_a_score_change():
    runs = M.compress_runs(np.array([0, 0, 1, 1, 1, 0]), np.array([0.2, 0.2, 0.2, 0.7, 0.7, 0.7]))
    assert runs.labels.tolist() == [0, 1, 1, 0]
    assert runs.labels.dtype == np.uint8
    assert runs.scores.tolist() == [0.2, 0.2, 0.7, 0.7]
    assert runs.weights.tolist() == [2.0, 1.0, 2.0, 1.0]


def test_compress_runs_of_one_frame_is_one_run_of_float_scores():
    runs = M.compress_runs(np.array([1]), np.array([3]))
    assert runs.labels.tolist() == [1] and runs.weights.tolist() == [1.0]
    assert runs.scores.dtype == np.float64 and runs.scores.tolist() == [3.0]


def test_compress_runs_of_no_frames_is_empty():
    runs = M.compress_runs(np.array([], dtype=np.int64), np.array([]))
    assert runs.labels.dtype == np.uint8 and runs.labels.shape == (0,)
    assert runs.scores.shape == (0,) and runs.weights.shape == (0,)


def test_compress_runs_rejects_2d_frames():
    with pytest.raises(ValueError, match=r"labels \(2, 2\) and scores \(2, 2\) must be equal 1-D"):
        M.compress_runs(np.zeros((2, 2)), np.zeros((2, 2)))


def test_a_class_of_zero_weight_is_absent():
    # Only label 0 carries weight: one class, so every metric is undefined.
    runs = M.Weighted(np.array([0, 1], np.uint8), np.array([0.2, 0.9]), np.array([3.0, 0.0]))
    assert math.isnan(M.frame_roc_auc(runs))
    assert math.isnan(M.average_precision(runs))
    assert math.isnan(M.pr_auc_trapezoid(runs))


def test_false_alarm_rate_default_threshold_is_one_half():
    assert M.false_alarm_rate(np.array([0.49, 0.5, 0.51, 0.1])) == pytest.approx(0.5)


def test_metrics_of_a_single_frame_or_video_are_defined():
    assert M.false_alarm_rate(np.array([0.7])) == 1.0
    assert M.mean_average_accuracy(np.array([2]), np.array([2])) == (1.0, {2: 1.0})


def test_mean_average_accuracy_of_no_videos_is_nan():
    maa, per = M.mean_average_accuracy(np.array([]), np.array([]))
    assert math.isnan(maa) and per == {}


def test_mean_average_accuracy_rejects_2d_classes():
    with pytest.raises(ValueError, match=r"\(1, 2\) classes must be equal 1-D shapes$"):
        M.mean_average_accuracy(np.zeros((1, 2)), np.zeros((1, 2)))
