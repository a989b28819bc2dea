"""Train samplers, chosen by the detector's ``sampler`` class attribute (a registry by name).

A sampler draws :class:`~wsvad.detectors.base.Batch` es from a video set (``BagVideos`` or
``SnippetVideos`` of wsvad.train.data). Its only state is ``(epoch, position)``; every epoch's
random order comes from ``default_rng([seed, epoch])``, so a resumed run draws exactly the batches
an uninterrupted run would have drawn.

``balanced`` (Sultani et al.; RTFM; most MIL papers)
    Each step draws ``n`` normal and ``n`` abnormal samples (a sample is a video, or one crop of a
    video with ``crop_mode: separate``), normal first, pair ``i <-> n + i``. Samples are taken in
    the order of a per-epoch shuffle of each class, without replacement until the class is used up
    (then that class is reshuffled); an epoch is ``ceil(larger class / n)`` steps.
``random_consecutive`` (CLAWS, sec. 3.1, "Random Batch Selector")
    Each video's snippet sequence is cut into non-overlapping windows of ``b`` consecutive
    snippets (``b = sampler.window``, 64 in the paper), which keep their temporal order. An epoch
    visits every window of every (video, crop) once, in a random order across the whole training
    set; a step takes ``windows_per_step`` of them as rows of ``(B, b, *F)`` (the paper: one window
    per weight update). Choices where the paper is silent: a video's last partial window is aligned
    to the video's end (so it overlaps the previous one) rather than dropped; a video shorter than
    ``b`` is padded by repeating its last snippet. ``Batch.video_index`` and ``Batch.start`` say
    where each row came from (CLAWS looks up its per-video clustering distance by video).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from wsvad.detectors.base import Batch
from wsvad.errors import WsvadError

_SAMPLERS: dict[str, tuple[str, Callable[..., Any]]] = {}


def register_sampler(name: str, needs: str) -> Callable:
    """Register a sampler class; ``needs`` is the video set it draws from: ``"bags"`` or
    ``"snippets"``."""

    def wrap(cls):
        if name in _SAMPLERS:
            raise ValueError(f"sampler {name!r} registered twice")
        _SAMPLERS[name] = (needs, cls)
        return cls

    return wrap


def list_samplers() -> list[str]:
    return sorted(_SAMPLERS)


def sampler_needs(name: str) -> str:
    if name not in _SAMPLERS:
        raise WsvadError(f"unknown sampler {name!r}; known: {', '.join(sorted(_SAMPLERS))}")
    return _SAMPLERS[name][0]


def build_sampler(name: str, videos, cfg, seed: int):
    """Build sampler ``name`` over ``videos`` with the ``SamplerConfig`` ``cfg``."""
    sampler_needs(name)
    return _SAMPLERS[name][1](videos, cfg, seed)


def _to_batch(features: np.ndarray, videos, rows: np.ndarray, starts: np.ndarray | None) -> Batch:
    import torch

    return Batch(
        features=torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
        labels=videos.labels[torch.from_numpy(rows)],
        class_index=torch.from_numpy(videos.class_index[rows]),
        video_index=torch.from_numpy(rows.astype(np.int64)),
        start=None if starts is None else torch.from_numpy(starts.astype(np.int64)),
    )


class _EpochSampler:
    """Shared ``(epoch, position)`` bookkeeping."""

    def __init__(self, seed: int):
        self.seed = seed
        self.epoch = 0
        self.position = 0

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    @property
    def at_epoch_start(self) -> bool:
        return self.position == 0


@register_sampler("balanced", needs="bags")
class BalancedSampler(_EpochSampler):
    def __init__(self, videos, cfg, seed: int):
        super().__init__(seed)
        self.videos = videos
        self.n = int(cfg.batch_per_class)
        k = videos.n_crops
        # A sample is (video row, crop); with crop_mode mean, k == 1.
        samples = np.array(
            [(row, c) for row in range(len(videos)) for c in range(k)], dtype=np.int64
        ).reshape(-1, 2)
        labels = videos.labels.numpy()[samples[:, 0]]
        self.pools = [samples[labels == 0], samples[labels == 1]]
        if min(len(p) for p in self.pools) == 0:
            raise ValueError("the balanced sampler needs normal and abnormal training videos")
        self.steps_per_epoch = math.ceil(max(len(p) for p in self.pools) / self.n)

    def _take(self, cls: int) -> np.ndarray:
        pool = self.pools[cls]
        start = self.position * self.n
        # Concatenated reshuffles of this class, long enough for the whole epoch.
        passes = math.ceil((self.steps_per_epoch * self.n) / len(pool))
        rng = np.random.default_rng([self.seed, self.epoch, cls])
        order = np.concatenate([rng.permutation(len(pool)) for _ in range(passes)])
        return pool[order[start : start + self.n]]

    def next_batch(self) -> Batch:
        picked = np.concatenate([self._take(0), self._take(1)])  # (2n, 2): normal first
        rows, crops = picked[:, 0], picked[:, 1]
        feats = self.videos.array[rows, :, crops]  # (2n, T, *F)
        self.position += 1
        if self.position == self.steps_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        return _to_batch(feats, self.videos, rows, None)


@register_sampler("random_consecutive", needs="snippets")
class RandomConsecutiveSampler(_EpochSampler):
    def __init__(self, videos, cfg, seed: int):
        super().__init__(seed)
        self.videos = videos
        self.b = int(cfg.window)
        self.per_step = int(cfg.windows_per_step)
        windows = []
        for row, n in enumerate(videos.lengths):
            starts = list(range(0, max(int(n) - self.b, 0) + 1, self.b))
            if n > self.b and starts[-1] + self.b < n:
                starts.append(int(n) - self.b)  # the tail window, aligned to the video's end
            windows += [(row, c, s) for c in range(videos.n_crops) for s in starts]
        self.windows = np.array(windows, dtype=np.int64).reshape(-1, 3)
        self.steps_per_epoch = math.ceil(len(self.windows) / self.per_step)

    def _read(self, row: int, crop: int, start: int) -> np.ndarray:
        win = self.videos.window(row, crop, start, self.b)  # (<= b, *F)
        if len(win) < self.b:
            pad = np.repeat(win[-1:], self.b - len(win), axis=0)
            win = np.concatenate([win, pad])
        return win

    def next_batch(self) -> Batch:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.windows))
        picked = self.windows[
            order[self.position * self.per_step : (self.position + 1) * self.per_step]
        ]
        feats = np.stack([self._read(r, c, s) for r, c, s in picked])  # (B, b, *F)
        self.position += 1
        if self.position == self.steps_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        return _to_batch(feats, self.videos, picked[:, 0], picked[:, 2])
