"""wsvad.runs: the training warning and mean ± std over seeds, shared by train, evaluate and CLI."""

from __future__ import annotations

import numpy as np
import pytest

from wsvad.runs import TEST_SELECTION_WARNING, mean_std, training_warning


def test_mean_std_is_the_sample_std_over_the_values_given():
    values = [0.81, None, 0.84, 0.78]
    summary = mean_std(values)
    assert summary["n"] == 3
    assert summary["mean"] == pytest.approx(np.mean([0.81, 0.84, 0.78]))
    assert summary["std"] == pytest.approx(np.std([0.81, 0.84, 0.78], ddof=1))
    assert mean_std([0.7]) == {"mean": 0.7, "std": 0.0, "n": 1}
    assert mean_std([None, None]) == {"mean": None, "std": None, "n": 0}
    assert mean_std(v for v in (1, 3)) == {"mean": 2.0, "std": pytest.approx(2**0.5), "n": 2}


def test_training_warning_puts_test_selection_first_and_skips_empty_notes():
    assert training_warning("last") is None
    assert training_warning("val", [None, ""]) is None
    assert training_warning("test-best") == TEST_SELECTION_WARNING
    assert training_warning("test-best", [None, "collapsed"]) == (
        f"{TEST_SELECTION_WARNING}; collapsed"
    )
    # The same collapse note from several seeds is said once.
    assert training_warning("last", ["a", "b", "a"]) == "a; b"
