"""What every detector provides, so that train and evaluate can drive any of them the same way."""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple, Protocol

import torch
from torch import Tensor, nn


class Batch(NamedTuple):
    """One training step's input.

    Attributes:
        features: ``(B, T, *F)`` float32: T bags per video (or T consecutive snippets for the
            ``random_consecutive`` sampler).
        labels: ``(B,)`` float32 video labels, 0 normal, 1 abnormal.
        class_index: ``(B,)`` int64, 0 = Normal, k = the dataset's ``class_names[k]``.
        video_index: ``(B,)`` int64 or ``None``: which training video each row came from, as an
            index into the :class:`TrainVideos` passed to :meth:`Detector.start_epoch` (rows from
            different crops of one video share the index). Every wsvad sampler fills it; detectors
            that keep per-video state (CLAWS's clustering distance ``d_i``) use it to look that up.
        start: ``(B,)`` int64 or ``None``: ``random_consecutive`` only: the snippet index where each
            row's window starts inside its video (``None`` for bag samplers).

    With the ``balanced`` sampler the first ``B/2`` items are normal and the last ``B/2`` abnormal,
    item ``i`` paired with item ``B/2 + i`` (the MIL ranking pairs).

    With the ``random_consecutive`` sampler (CLAWS, sec. 3.1) every row is a window of ``T = b``
    temporally ordered, consecutive snippet features of ONE video; the rows come from windows drawn
    in random order across the whole training set (no normal/abnormal balance, no pairing).
    """

    features: Tensor
    labels: Tensor
    class_index: Tensor
    video_index: Tensor | None = None
    start: Tensor | None = None


class TrainVideos(Protocol):
    """All training videos, as handed to :meth:`Detector.start_epoch` (read lazily from disk).

    ``len(videos)`` is the number of videos V; ``videos.labels`` is ``(V,)`` float32; ``videos[i]``
    is ``(K, N_i, *F)`` float32: the sequence the sampler draws from (bags for bag samplers, raw
    snippets for ``random_consecutive``), with ``K`` = 1 when crops are averaged, else the crops.
    """

    labels: Tensor

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Tensor: ...


class Detector(nn.Module, abc.ABC):
    """Base class. Subclasses set ``sampler`` and implement ``forward`` and ``loss``.

    Contract (checked for every registered detector by tests/detectors/test_all_detectors.py):
    ``forward`` maps ``(B, T, *F)`` to ``(B, T)`` scores in ``[0, 1]``; ``loss`` returns a dict with
    a scalar ``"loss"`` (other keys are logged); ``score_video`` maps all ``N`` snippets of one crop
    of a test video ``(N, *F)`` to ``(N,)`` snippet scores.

    Class attributes a detector may override:
        sampler: the train sampler it needs (``balanced`` or ``random_consecutive``).
        feature_ndim: ``len(F)`` it accepts (1 for ``[D]`` features, 2 for ``[7, D]``...); the
            train stage refuses a store whose ``feature_shape`` has another length.
        example_feature_shape: a small ``F`` the contract test builds the detector with.
        example_params: params overrides for the contract test (e.g. smaller layers).
        train_defaults: the paper's training settings, used where the train config leaves a key
            unset, e.g.
            ``{"optim": {"name": "adagrad", "lr": 1e-3}, "sampler": {"batch_per_class": 30}}``.
    """

    sampler: ClassVar[str] = "balanced"
    feature_ndim: ClassVar[int] = 1
    example_feature_shape: ClassVar[tuple[int, ...]] = (32,)
    example_params: ClassVar[dict] = {}
    train_defaults: ClassVar[dict] = {}
    registry_name: ClassVar[str] = ""

    @abc.abstractmethod
    def loss(self, batch: Batch) -> dict[str, Tensor]:
        """The training loss of one batch: ``{"loss": scalar, ...}`` (other keys are logged)."""

    def start_epoch(self, videos: TrainVideos) -> None:
        """Called by the train loop before each epoch's first step (no-op by default).

        State computed here must live in registered (persistent) buffers so that a resumed run,
        which does not call this again mid-epoch, restores it from the checkpoint.
        """

    @torch.no_grad()
    def score_video(self, features: Tensor) -> Tensor:
        """Default inference: the whole snippet sequence as one sequence, ``(N, *F) -> (N,)``."""
        return self.forward(features.unsqueeze(0)).squeeze(0)
