"""Bag rules against hand-computed examples (RTFM linspace mean, Sultani rounded linspace + L2,
max)."""

import numpy as np
import pytest

from wsvad.pipeline.bags import bag_ranges, bag_scores_to_snippets, segment_into_bags

# Five snippets with two feature values each: snippet i = [i, 10 + i].
FIVE = np.array([[i, 10 + i] for i in range(5)], dtype=np.float32)


def test_rtfm_ranges_follow_integer_linspace():
    # linspace(0, 5, 4) = [0, 1.67, 3.33, 5] -> int [0, 1, 3, 5]
    assert bag_ranges(5, 3, "rtfm").tolist() == [[0, 1], [1, 3], [3, 5]]


def test_rtfm_mean_hand_computed():
    bags = segment_into_bags(FIVE, 3, "rtfm", "mean")
    np.testing.assert_allclose(bags, [[0, 10], [1.5, 11.5], [3.5, 13.5]])


def test_rtfm_empty_range_takes_single_snippet():
    # N=2, T=4: linspace(0, 2, 5) -> [0, 0, 1, 1, 2]; bags 0 and 2 are empty ranges.
    two = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    assert bag_ranges(2, 4, "rtfm").tolist() == [[0, 1], [0, 1], [1, 2], [1, 2]]
    np.testing.assert_allclose(segment_into_bags(two, 4, "rtfm"), [[1, 2], [1, 2], [3, 4], [3, 4]])


def test_rtfm_max_pool_hand_computed():
    feats = np.array([[0, 5], [4, 1], [2, 2], [1, 9], [3, 0]], dtype=np.float32)
    np.testing.assert_allclose(segment_into_bags(feats, 3, "rtfm", "max"), [[0, 5], [4, 2], [3, 9]])


def test_sultani_rounded_linspace_leaves_last_snippet_out():
    # 0-based round(linspace(0, 4, 4)) = round([0, 1.33, 2.67, 4]) = [0, 1, 3, 4]
    assert bag_ranges(5, 3, "sultani").tolist() == [[0, 1], [1, 3], [3, 4]]


def test_sultani_rounds_half_away_from_zero_like_matlab():
    # linspace(0, 5, 3) = [0, 2.5, 5]: MATLAB round(2.5) = 3 (numpy's round would give 2).
    assert bag_ranges(6, 2, "sultani").tolist() == [[0, 3], [3, 5]]


def test_sultani_mean_then_l2_hand_computed():
    feats = np.array([[3, 4], [1, 0], [0, 1], [0, 2], [100, 100]], dtype=np.float32)
    bags = segment_into_bags(feats, 3, "sultani")
    h = 1 / np.sqrt(2)
    # bag0 = [3,4]/5; bag1 = mean([1,0],[0,1]) = [.5,.5] -> unit; bag2 = [0,2] -> [0,1]; snippet 4
    # unused.
    np.testing.assert_allclose(bags, [[0.6, 0.8], [h, h], [0, 1]], rtol=1e-6)


def test_sultani_normalises_over_last_axis_per_crop():
    feats = np.zeros((4, 2, 3), dtype=np.float32)  # (N, C, D)
    feats[:, 0, 0] = 2.0
    feats[:, 1, 2] = -5.0
    bags = segment_into_bags(feats, 2, "sultani")
    assert bags.shape == (2, 2, 3)
    np.testing.assert_allclose(bags[:, 0], [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(bags[:, 1], [[0, 0, -1], [0, 0, -1]])


def test_sultani_zero_bag_stays_zero():
    bags = segment_into_bags(np.zeros((3, 2), dtype=np.float32), 2, "sultani")
    assert np.isfinite(bags).all() and (bags == 0).all()


def test_bags_keep_crops_apart():
    feats = np.stack([FIVE, FIVE * 2], axis=1)  # (5, 2, 2)
    bags = segment_into_bags(feats, 3, "rtfm")
    np.testing.assert_allclose(bags[:, 1], 2 * bags[:, 0])


def test_scores_back_to_snippets_rtfm():
    assert bag_scores_to_snippets(np.array([0.1, 0.5, 0.9]), 5, "rtfm").tolist() == pytest.approx(
        [0.1, 0.5, 0.5, 0.9, 0.9]
    )


def test_scores_back_to_snippets_averages_shared_snippets():
    # N=2, T=4: snippet 0 is pooled by bags 0 and 1, snippet 1 by bags 2 and 3.
    out = bag_scores_to_snippets(np.array([0.1, 0.3, 0.5, 0.9]), 2, "rtfm")
    np.testing.assert_allclose(out, [0.2, 0.7], rtol=1e-6)


def test_scores_back_to_snippets_sultani_fills_unused_last_snippet():
    out = bag_scores_to_snippets(np.array([0.2, 0.4, 0.8]), 5, "sultani")
    np.testing.assert_allclose(out, [0.2, 0.4, 0.4, 0.8, 0.8], rtol=1e-6)


def test_scores_back_to_snippets_are_the_bag_scores_exactly():
    # STA on the synthetic set: a saturated 1.0 next to sigmoid outputs of ~1e-35 once came back
    # at -6e-33 (a running sum's rounding residue), outside [0, 1].
    bag_scores = np.array([1.0, 3.7e-35, 1.0, 5.9e-39, 0.25, 1.0, 1e-30, 0.0], dtype=np.float32)
    for rule in ("rtfm", "sultani"):
        for n in (5, 8, 11, 37):
            out = bag_scores_to_snippets(bag_scores, n, rule)
            assert out.min() >= 0.0 and out.max() <= 1.0, (rule, n, out.min(), out.max())
    # N > T under the rtfm rule: disjoint bags, so every snippet carries its bag's score bit for bit
    out = bag_scores_to_snippets(bag_scores, 11, "rtfm")
    for i, (s, e) in enumerate(bag_ranges(11, 8, "rtfm")):
        assert (out[s:e] == bag_scores[i]).all(), (i, out[s:e], bag_scores[i])


def test_scores_round_trip_is_exact_for_bag_level_models():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(37, 4)).astype(np.float32)
    w = rng.normal(size=4).astype(np.float32)
    bags = segment_into_bags(feats, 8, "rtfm")
    per_snippet = bag_scores_to_snippets(bags @ w, 37, "rtfm")
    ranges = bag_ranges(37, 8, "rtfm")
    for i, (s, e) in enumerate(ranges):
        np.testing.assert_allclose(per_snippet[s:e], bags[i] @ w, rtol=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bag_ranges(0, 32), "cannot cut a video of 0 snippets"),
        (lambda: bag_ranges(5, 0), "number of bags must be >= 1, got 0"),
        (lambda: bag_ranges(5, 2, "uniform"), "unknown bag rule 'uniform'; known: rtfm, sultani"),
        (
            lambda: segment_into_bags(FIVE, 2, "rtfm", "median"),
            "unknown bag pooling 'median'; known: mean, max",
        ),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_scores_back_to_snippets_default_rule_is_rtfm():
    # N=3, T=4 is where the rules share snippets differently: rtfm bounds [0, 0, 1, 2, 3] (snippet 0
    # in bags 0 and 1), sultani bounds round([0, .5, 1, 1.5, 2]) = [0, 1, 1, 2, 2] (snippet 1 in
    # bags 1 and 2).
    scores = np.array([0.1, 0.3, 0.5, 0.9])
    np.testing.assert_allclose(bag_scores_to_snippets(scores, 3), [0.2, 0.5, 0.9], rtol=1e-6)
    out = bag_scores_to_snippets(scores, 3, "sultani")
    np.testing.assert_allclose(out, [0.1, 0.4, 0.9], rtol=1e-6)
    assert out.dtype == np.float32


def test_scores_back_to_snippets_take_a_batch_of_one_video():
    # A detector's (1, T) output is flattened to the T bag scores.
    out = bag_scores_to_snippets(np.array([[0.1, 0.9]]), 4)
    np.testing.assert_allclose(out, [0.1, 0.1, 0.9, 0.9], rtol=1e-6)


def test_scores_back_to_snippets_fill_snippet_one_from_snippet_zero():
    # Sultani, N=2, T=1: the single bag pools snippet 0 only; snippet 1 takes its score.
    assert bag_scores_to_snippets(np.array([0.7]), 2, "sultani").tolist() == pytest.approx(
        [0.7, 0.7]
    )


def test_default_rule_is_rtfm_and_one_snippet_is_a_video():
    # N=3, T=4: rtfm bounds [0, 0, 1, 2, 3], sultani round([0, .5, 1, 1.5, 2]) = [0, 1, 1, 2, 2].
    assert bag_ranges(3, 4).tolist() == [[0, 1], [0, 1], [1, 2], [2, 3]]
    assert bag_ranges(3, 4, "sultani").tolist() == [[0, 1], [1, 2], [1, 2], [2, 3]]
    for rule in ("rtfm", "sultani"):
        assert bag_ranges(1, 2, rule).tolist() == [[0, 1], [0, 1]]
    # segment_into_bags defaults to rtfm + mean: no L2 norm, snippet 4 used
    np.testing.assert_allclose(segment_into_bags(FIVE, 3), [[0, 10], [1.5, 11.5], [3.5, 13.5]])


def test_bags_are_pooled_in_float32_whatever_the_input_dtype():
    x = np.random.default_rng(0).normal(size=(37, 8))  # float64
    for rule in ("rtfm", "sultani"):
        bags = segment_into_bags(x, 4, rule)
        assert bags.dtype == np.float32
        # bit for bit the bags of the float32 store (a float64 mean differs in the last bit)
        assert np.array_equal(bags, segment_into_bags(x.astype(np.float32), 4, rule))


def test_sultani_l2_norm_is_over_the_feature_axis_not_the_crops():
    feats = np.zeros((3, 2, 2), dtype=np.float32)  # (N, C, D), constant over time
    feats[:, 0] = [3.0, 4.0]
    feats[:, 1] = [0.0, 2.0]
    np.testing.assert_allclose(segment_into_bags(feats, 1, "sultani"), [[[0.6, 0.8], [0, 1]]])
