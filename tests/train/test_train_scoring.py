"""Scoring helpers of the train stage: the collapse check on test scores."""

from __future__ import annotations

import numpy as np

from wsvad.train.scoring import COLLAPSE_SPREAD, collapse_warning


def test_constant_scores_are_reported_as_a_collapse():
    scores = {"a": np.full(5, 0.25, np.float32), "b": np.full(3, 0.25, np.float32)}
    message = collapse_warning(scores)
    assert message == (
        "training collapsed: every test score is 0.25 (spread 0.0e+00 over 8 scores), so the AUC "
        "is meaningless; lower optim.lr or check the features"
    )


def test_a_spread_below_the_threshold_still_counts_as_collapsed():
    scores = {"a": np.array([0.5, 0.5 + COLLAPSE_SPREAD / 2])}
    assert collapse_warning(scores).startswith(
        "training collapsed: every test score is 0.5 (spread 5.0e-05 over 2"
    )


def test_scores_that_vary_across_or_within_videos_are_not_a_collapse():
    assert collapse_warning({"a": np.full(4, 0.1), "b": np.full(4, 0.9)}) is None
    assert collapse_warning({"a": np.array([0.1, 0.1, 0.1 + 2 * COLLAPSE_SPREAD])}) is None
    assert collapse_warning({}) is None
