"""The pairwise losses (normal half first, then abnormal) refuse any other batch, naming the
detector and the labels: one check, ``losses.balanced_half``, for every such detector."""

from __future__ import annotations

import pytest
import torch

from wsvad.detectors import Batch, build_detector, detector_class
from wsvad.detectors.losses import balanced_half

PAIRWISE = ["dam", "joint", "mil", "rtfm", "sta"]


def test_balanced_half_is_half_the_batch():
    assert balanced_half(torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0]), "mil") == 3


@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_losses_refuse_an_unbalanced_batch(name, unbalanced_labels):
    cls = detector_class(name)
    torch.manual_seed(0)
    det = build_detector(name, cls.example_feature_shape, cls.example_params)
    y = torch.tensor(unbalanced_labels)
    features = torch.zeros(len(y), 32, *cls.example_feature_shape)  # joint is built for T = 32
    with pytest.raises(ValueError) as caught:
        det.loss(Batch(features, y, y.long()))
    assert str(caught.value) == (
        f"{name} loss needs a balanced batch: B/2 normal videos (label 0) then B/2 abnormal "
        f"(label 1); got labels {unbalanced_labels}"
    )
    # and the same batch, balanced, is taken
    balanced = torch.tensor([0.0, 1.0])
    det.loss(Batch(features[:2], balanced, balanced.long()))
