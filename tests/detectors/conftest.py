"""Planted-anomaly bag features shared by the detector learning tests."""

from __future__ import annotations

import pytest
import torch


def _planted(n_per_class: int, T: int = 32, D: int = 64, seed: int = 0):
    """Normal videos ~ N(0, 1); abnormal ones have 3-6 consecutive bags shifted by +1 on 16 dims.

    Returns ``x (2n, T, D)``, video labels ``(2n,)`` (normal first) and bag labels ``(2n, T)``.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2 * n_per_class, T, D, generator=g)
    bag_labels = torch.zeros(2 * n_per_class, T)
    for v in range(n_per_class, 2 * n_per_class):
        length = int(torch.randint(3, 7, (1,), generator=g))
        start = int(torch.randint(0, T - length + 1, (1,), generator=g))
        x[v, start : start + length, :16] += 1.0
        bag_labels[v, start : start + length] = 1
    labels = torch.cat([torch.zeros(n_per_class), torch.ones(n_per_class)])
    return x, labels, bag_labels


@pytest.fixture
def planted_bags():
    """Factory ``planted_bags(n_per_class, T=32, D=64, seed=0) -> (x, labels, bag_labels)``."""
    return _planted
