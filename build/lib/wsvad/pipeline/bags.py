"""Cut a video's snippet features into T bags, and map bag scores back to snippets (numpy only).

Two boundary rules are in use in the literature:

``rtfm``
    RTFM's ``process_feat``: boundaries ``np.linspace(0, N, T + 1, dtype=int)``; bag ``i`` pools
    snippets ``[b_i, b_{i+1})``, and when that range is empty (``N < T``) it takes the single
    snippet ``b_i``. Every snippet is used.
``sultani``
    Sultani et al.'s public MATLAB script (``Save_C3DFeatures_32Segments.m``): boundaries
    ``round(linspace(1, N, T + 1))`` (1-based, MATLAB rounding, i.e. half away from zero); bag
    ``i`` pools ``[b_i, b_{i+1} - 1]`` inclusive, a single snippet when that is empty, and each bag
    is then L2-normalised. As in that script, the last snippet of a video belongs to no bag (its
    guard for the last segment never fires). The paper (sec. 4) instead L2-normalises each clip
    *before* averaging; we follow the released code, which produced the published features.

``pool`` is ``mean`` (both papers) or ``max`` (the joint detection/classification paper max-pools
inside segments). Bags keep any trailing dimensions: ``[N, *rest] -> [T, *rest]``; the Sultani
L2 norm is taken over the last axis (the feature dimension D).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

BagRule = Literal["rtfm", "sultani"]
BagPool = Literal["mean", "max"]
BAG_RULES: tuple[BagRule, ...] = get_args(BagRule)
BAG_POOLS: tuple[BagPool, ...] = get_args(BagPool)


def bag_ranges(n_snippets: int, n_bags: int, rule: BagRule = "rtfm") -> np.ndarray:
    """Half-open snippet range ``[start, end)`` pooled by each bag; never empty.

    Args:
        n_snippets: N, the number of snippets of the video (>= 1).
        n_bags: T.
        rule: ``rtfm`` or ``sultani`` (see the module docstring).

    Returns:
        int64 array ``(T, 2)``.

    >>> bag_ranges(5, 2).tolist()
    [[0, 2], [2, 5]]
    >>> bag_ranges(5, 2, "sultani").tolist()
    [[0, 2], [2, 4]]
    """
    if n_snippets < 1:
        raise ValueError(f"cannot cut a video of {n_snippets} snippets into bags")
    if n_bags < 1:
        raise ValueError(f"number of bags must be >= 1, got {n_bags}")
    if rule == "rtfm":
        bounds = np.linspace(0, n_snippets, n_bags + 1, dtype=int)
    elif rule == "sultani":
        # 0-based form of MATLAB round(linspace(1, N, T+1)); floor(x + 0.5) is MATLAB's rounding
        # for x >= 0.
        bounds = np.floor(np.linspace(0, n_snippets - 1, n_bags + 1) + 0.5).astype(int)
    else:
        raise ValueError(f"unknown bag rule {rule!r}; known: {', '.join(BAG_RULES)}")
    starts = bounds[:-1].astype(np.int64)
    # an empty range takes snippet b_i alone
    ends = np.maximum(bounds[1:], starts + 1).astype(np.int64)
    return np.stack([starts, ends], axis=1)


def segment_into_bags(
    features: np.ndarray, n_bags: int, rule: BagRule = "rtfm", pool: BagPool = "mean"
) -> np.ndarray:
    """Pool ``[N, *rest]`` snippet features into ``[T, *rest]`` bags (float32).

    Args:
        features: ``(N, *rest)``, e.g. ``(N, C, D)`` with crops kept apart.
        n_bags: T.
        rule: boundary rule; ``sultani`` also L2-normalises each bag over the last axis.
        pool: ``mean`` or ``max`` inside each bag.
    """
    if pool not in BAG_POOLS:
        raise ValueError(f"unknown bag pooling {pool!r}; known: {', '.join(BAG_POOLS)}")
    feats = np.asarray(features, dtype=np.float32)
    ranges = bag_ranges(len(feats), n_bags, rule)
    reduce = np.mean if pool == "mean" else np.max
    # (T, *rest)
    bags = np.stack([reduce(feats[s:e], axis=0) for s, e in ranges]).astype(np.float32)
    if rule == "sultani":
        norm = np.linalg.norm(bags, axis=-1, keepdims=True)
        # The MATLAB script stops on an all-zero bag; a zero bag is kept as zeros here.
        bags = bags / np.maximum(norm, np.finfo(np.float32).tiny)
    return bags


def bag_scores_to_snippets(
    bag_scores: np.ndarray, n_snippets: int, rule: BagRule = "rtfm"
) -> np.ndarray:
    """Give each snippet the score of the bag(s) whose features included it.

    A snippet pooled by several bags (possible when ``N < T``) gets the mean of their scores; a
    snippet pooled by none (the last one under the ``sultani`` rule) gets the score of the nearest
    earlier snippet. This makes evaluating a bag-level detector exact at snippet resolution.

    Args:
        bag_scores: ``(T,)``.
        n_snippets: N of the video the bags were cut from.
        rule: the rule used to cut the bags.

    Returns:
        float32 ``(N,)``.

    >>> bag_scores_to_snippets(np.array([0.0, 1.0]), 5).tolist()
    [0.0, 0.0, 1.0, 1.0, 1.0]
    """
    scores = np.asarray(bag_scores, dtype=np.float64).reshape(-1)
    ranges = bag_ranges(n_snippets, len(scores), rule)
    total = np.zeros(n_snippets)
    count = np.zeros(n_snippets)
    # A loop over the T bags, not difference arrays + cumsum: a running sum leaves rounding
    # residue (a snippet after a bag scored 1.0 came out at -6e-33), and a score must stay exactly
    # in [0, 1].
    for (start, end), score in zip(ranges, scores, strict=True):  # one range per bag score
        total[start:end] += score
        count[start:end] += 1
    covered = count > 0.5
    out = np.where(covered, total / np.maximum(count, 1), np.nan)
    idx = np.where(covered, np.arange(n_snippets), 0)
    np.maximum.accumulate(idx, out=idx)  # forward-fill from the nearest earlier covered snippet
    out = out[idx]
    assert not np.isnan(out).any(), "snippet 0 is pooled by bag 0 under every rule"
    return out.astype(np.float32)
