"""Loss terms shared by several papers (Sultani et al. 2018, eq. 4-7 and its descendants)."""

from __future__ import annotations

import torch
from torch import Tensor


def balanced_half(labels: Tensor, detector: str) -> int:
    """``B / 2`` for a balanced batch, the first half normal videos (label 0) and the second half
    abnormal (label 1), as the balanced sampler draws it; otherwise a ValueError naming the
    detector, since a pairwise loss on any other batch is silently wrong."""
    half = labels.shape[0] // 2
    if labels.shape[0] % 2 or bool((labels[:half] != 0).any()) or bool((labels[half:] != 1).any()):
        raise ValueError(
            f"{detector} loss needs a balanced batch: B/2 normal videos (label 0) then B/2 "
            f"abnormal (label 1); got labels {labels.tolist()}"
        )
    return half


def mil_ranking_hinge(
    abnormal_scores: Tensor, normal_scores: Tensor, margin: float = 1.0
) -> Tensor:
    """Mean over pairs of ``max(0, margin - max_t s_a + max_t s_n)`` (Sultani et al., eq. 3).

    Args:
        abnormal_scores: ``(P, T)`` bag scores of abnormal videos.
        normal_scores: ``(P, T)`` bag scores of the paired normal videos.
    """
    return torch.relu(
        margin - abnormal_scores.max(dim=1).values + normal_scores.max(dim=1).values
    ).mean()


def mil_all_pairs_hinge(
    abnormal_scores: Tensor, normal_scores: Tensor, margin: float = 1.0
) -> Tensor:
    """``1/N sum_i sum_j max(0, margin - max_t s_a_j + max_t s_n_i)``: every normal video i
    against every abnormal video j, summed over j and averaged over i, as Sultani et al.'s
    released Keras ``custom_objective`` computes it.

    Args:
        abnormal_scores: ``(A, T)`` bag scores of the abnormal videos.
        normal_scores: ``(N, T)`` bag scores of the normal videos.
    """
    top_abnormal = abnormal_scores.max(dim=1).values  # (A,)
    top_normal = normal_scores.max(dim=1).values  # (N,)
    pairs = torch.relu(margin - top_abnormal[None, :] + top_normal[:, None])  # (N, A)
    return pairs.sum(dim=1).mean()


def temporal_smoothness(scores: Tensor) -> Tensor:
    """Mean over videos of ``sum_t (s_t - s_{t+1})^2`` (Sultani et al., eq. 6 first term):
    ``(P, T) -> ()``."""
    return ((scores[:, :-1] - scores[:, 1:]) ** 2).sum(dim=1).mean()


def sparsity(scores: Tensor) -> Tensor:
    """Mean over videos of ``sum_t s_t`` (Sultani et al., eq. 6 second term); ``(P, T) -> ()``."""
    return scores.sum(dim=1).mean()
