"""What every detector provides, so that train and evaluate can drive any of them the same way."""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn


class Batch(NamedTuple):
    """One training step's input.

    Attributes:
        features: ``(B, T, *F)`` float32: T bags per video (or T consecutive snippets for the
            ``random_consecutive`` sampler).
        labels: ``(B,)`` float32 video labels, 0 normal, 1 abnormal.
        class_index: ``(B,)`` int64, 0 = Normal, k = the dataset's ``class_names[k]``.

    With the ``balanced`` sampler the first ``B/2`` items are normal and the last ``B/2`` abnormal,
    item ``i`` paired with item ``B/2 + i`` (the MIL ranking pairs).
    """

    features: Tensor
    labels: Tensor
    class_index: Tensor


class Detector(nn.Module):
    """Base class. Subclasses set ``sampler`` and implement ``forward`` and ``loss``.

    Contract (checked for every registered detector by tests/detectors/test_all_detectors.py):
    ``forward`` maps ``(B, T, *F)`` to ``(B, T)`` scores in ``[0, 1]``; ``loss`` returns a dict with a
    scalar ``"loss"`` (other keys are logged); ``score_video`` maps all ``N`` snippets of one crop of a
    test video ``(N, *F)`` to ``(N,)`` snippet scores.
    """

    sampler: ClassVar[str] = "balanced"

    def loss(self, batch: Batch) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement loss()")

    @torch.no_grad()
    def score_video(self, features: Tensor) -> Tensor:
        """Default inference: the whole snippet sequence as one sequence, ``(N, *F) -> (N,)``."""
        return self.forward(features.unsqueeze(0)).squeeze(0)
