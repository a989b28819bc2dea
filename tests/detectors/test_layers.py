"""The range helpers detectors share (detectors/layers.py), on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from wsvad.detectors.layers import (
    flat_dim,
    flatten_snippets,
    linspace_ranges,
    pool_ranges,
    spread_range_scores,
    window_ranges,
)


def test_flat_dim_multiplies_the_feature_axes():
    assert flat_dim((7, 1024)) == 7168
    assert flat_dim((5,)) == 5
    assert flat_dim(()) == 1


def test_flatten_snippets_keeps_the_lead_axes():
    x = torch.arange(120.0).reshape(2, 3, 4, 5)
    assert flatten_snippets(x).shape == (2, 3, 20)
    assert torch.equal(flatten_snippets(x)[1, 2], torch.arange(100.0, 120.0))
    assert flatten_snippets(x, lead=1).shape == (2, 60)


@pytest.mark.parametrize(
    ("n", "length", "expected"),
    [
        (8, 4, [(0, 4), (4, 8)]),  # a multiple: no extra window
        (10, 4, [(0, 4), (4, 8), (6, 10)]),  # the tail window overlaps its predecessor
        (7, 4, [(0, 4), (3, 7)]),
        (5, 4, [(0, 4), (1, 5)]),
        (4, 4, [(0, 4)]),
        (3, 4, [(0, 3)]),  # shorter than one window
        (1, 4, [(0, 1)]),
        (3, 1, [(0, 1), (1, 2), (2, 3)]),
    ],
)
def test_window_ranges_hand_computed(n, length, expected):
    assert window_ranges(n, length) == expected


def test_linspace_ranges_hand_computed():
    # linspace(0, 5, 4) = [0, 1.67, 3.33, 5] -> [0, 1, 3, 5]
    assert linspace_ranges(5, 3) == [(0, 1), (1, 3), (3, 5)]
    # linspace(0, 2, 5) = [0, .5, 1, 1.5, 2] -> [0, 0, 1, 1, 2]: empty ranges take one snippet
    assert linspace_ranges(2, 4) == [(0, 1), (0, 1), (1, 2), (1, 2)]
    assert linspace_ranges(1, 3) == [(0, 1), (0, 1), (0, 1)]
    assert linspace_ranges(5, 1) == [(0, 5)]


def test_linspace_ranges_bounds_are_exact_where_float32_is_not():
    # 3210 * 30 / 100 = 963 exactly; a float32 linspace gives 962.99994, floored to 962.
    ranges = linspace_ranges(3210, 100)
    assert ranges[29] == (930, 963) and ranges[30] == (963, 995)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: window_ranges(0, 4), r"^window_ranges needs n >= 1 and length >= 1, got n=0, "),
        (lambda: window_ranges(4, 0), r"got n=4, length=0$"),
        (lambda: linspace_ranges(0, 3), r"^linspace_ranges needs n, segments >= 1, got n=0, "),
        (lambda: linspace_ranges(3, 0), r"got n=3, segments=0$"),
        (lambda: pool_ranges(torch.zeros(3, 2), [(0, 3)], "median"), r"got 'median'$"),
    ],
)
def test_range_helpers_name_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_pool_ranges_mean_and_max_hand_computed():
    feats = torch.tensor([[0.0, 5.0], [4.0, 1.0], [2.0, 2.0], [1.0, 9.0], [3.0, 0.0]])
    ranges = [(0, 2), (2, 5)]
    torch.testing.assert_close(
        pool_ranges(feats, ranges), torch.tensor([[2.0, 3.0], [2.0, 11 / 3]])
    )
    torch.testing.assert_close(
        pool_ranges(feats, ranges, "max"), torch.tensor([[4.0, 5.0], [3.0, 9.0]])
    )


def test_spread_range_scores_averages_overlaps_in_the_scores_dtype():
    scores = torch.tensor([0.2, 0.6, 1.0], dtype=torch.float64)
    out = spread_range_scores(4, [(0, 2), (1, 3), (3, 4)], scores)
    assert out.dtype == torch.float64
    # exactly the float64 values: sums in float32 would be off in the 8th digit
    assert torch.equal(out, torch.tensor([0.2, (0.2 + 0.6) / 2, 0.6, 1.0], dtype=torch.float64))
    low = spread_range_scores(2, [(0, 2), (1, 2)], torch.tensor([0.5, 1.0], dtype=torch.bfloat16))
    assert low.dtype == torch.bfloat16 and low.tolist() == [0.5, 0.75]


def test_spread_range_scores_refuses_more_scores_than_ranges():
    with pytest.raises(ValueError, match="zip"):
        spread_range_scores(2, [(0, 2)], torch.tensor([0.5, 0.7]))


def test_spread_range_scores_names_an_uncovered_snippet():
    with pytest.raises(ValueError, match=r"^snippet 2 of 4 is not covered by any range$"):
        spread_range_scores(4, [(0, 2), (3, 4)], torch.tensor([0.5, 0.5]))
