"""Small tensor helpers shared by detectors: flattening snippet features and mapping the scores of
snippet ranges (bags, windows, segments) back onto the snippets they cover.

Not a detector (``detectors/__init__.py`` lists those); torch only, no I/O.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def flat_dim(shape: tuple[int, ...]) -> int:
    """Number of values in one snippet's features, e.g. ``(7, 1024) -> 7168``."""
    return int(math.prod(shape)) if shape else 1


def flatten_snippets(features: Tensor, lead: int = 2) -> Tensor:
    """Flatten everything after the first ``lead`` axes: ``(B, T, *F) -> (B, T, prod(F))``."""
    return features.reshape(*features.shape[:lead], -1)


def window_ranges(n: int, length: int) -> list[tuple[int, int]]:
    """Consecutive windows of ``length`` snippets covering ``n`` snippets.

    Windows start at ``0, length, 2*length, ...``; when ``n`` is not a multiple of ``length`` the
    last window is the final ``length`` snippets (``[n - length, n)``), so every window has the same
    size and the tail overlaps its predecessor. A video shorter than ``length`` is one window.
    """
    if n < 1 or length < 1:
        raise ValueError(f"window_ranges needs n >= 1 and length >= 1, got n={n}, length={length}")
    if n <= length:
        return [(0, n)]
    ranges = [(start, start + length) for start in range(0, n - length + 1, length)]
    if ranges[-1][1] < n:
        ranges.append((n - length, n))
    return ranges


def linspace_ranges(n: int, segments: int) -> list[tuple[int, int]]:
    """The RTFM segmentation rule: boundaries ``linspace(0, n, segments + 1)`` truncated to int;
    an empty range ``[r, r)`` becomes the single snippet ``[r, r + 1)`` (clipped to ``n - 1``)."""
    if n < 1 or segments < 1:
        raise ValueError(f"linspace_ranges needs n, segments >= 1, got n={n}, segments={segments}")
    bounds = torch.linspace(0, n, segments + 1, dtype=torch.float64).floor().long().tolist()
    ranges = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        if end <= start:
            start = min(start, n - 1)
            end = start + 1
        ranges.append((start, end))
    return ranges


def pool_ranges(features: Tensor, ranges: list[tuple[int, int]], mode: str = "mean") -> Tensor:
    """Pool ``(N, D)`` snippet features inside each range: ``-> (len(ranges), D)``."""
    if mode not in ("mean", "max"):
        raise ValueError(f"pool mode must be 'mean' or 'max', got {mode!r}")
    pooled = []
    for start, end in ranges:
        chunk = features[start:end]
        pooled.append(chunk.mean(0) if mode == "mean" else chunk.amax(0))
    return torch.stack(pooled)


def spread_range_scores(n: int, ranges: list[tuple[int, int]], scores: Tensor) -> Tensor:
    """Give each of ``n`` snippets the mean score of the ranges that cover it: ``(R,) -> (n,)``.

    Every snippet must be covered by at least one range.
    """
    total = torch.zeros(n, dtype=scores.dtype, device=scores.device)
    count = torch.zeros(n, dtype=scores.dtype, device=scores.device)
    for (start, end), score in zip(ranges, scores, strict=True):
        total[start:end] += score
        count[start:end] += 1
    if bool((count == 0).any()):
        missing = int((count == 0).nonzero()[0])
        raise ValueError(f"snippet {missing} of {n} is not covered by any range")
    return total / count
