"""Samplers: balanced normal-first pairs, CLAWS random consecutive windows, resumable state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsvad.errors import WsvadError
from wsvad.pipeline.store import FeatureStore
from wsvad.train.config import SamplerConfig
from wsvad.train.data import BagVideos, SnippetVideos, VideoInfo
from wsvad.train.samplers import build_sampler, list_samplers, sampler_needs


def _infos(labels, lengths=None):
    lengths = lengths or [4] * len(labels)
    return [
        VideoInfo(f"v{i}", "train", lab, lab, None, n, None)
        for i, (lab, n) in enumerate(zip(labels, lengths, strict=True))
    ]


def _bag_videos(labels, crops=2, t=4):
    # feature [video, crop, bag] so every row says where it came from
    arr = np.zeros((len(labels), t, crops, 3), dtype=np.float32)
    for v in range(len(labels)):
        for c in range(crops):
            arr[v, :, c, 0], arr[v, :, c, 1], arr[v, :, c, 2] = v, c, np.arange(t)
    return BagVideos(arr, _infos(labels))


def test_registry_names_and_needs():
    assert list_samplers() == ["balanced", "random_consecutive"]
    assert (sampler_needs("balanced"), sampler_needs("random_consecutive")) == ("bags", "snippets")
    known = "known: balanced, random_consecutive"
    with pytest.raises(WsvadError, match=f"unknown sampler 'x'; {known}"):
        sampler_needs("x")


def test_balanced_batches_are_normal_first_and_cover_each_epoch():
    labels = [0, 0, 0, 1, 1, 1]
    videos = _bag_videos(labels)
    sampler = build_sampler("balanced", videos, SamplerConfig(batch_per_class=2), seed=0)
    assert sampler.steps_per_epoch == 3  # 6 (video, crop) samples per class / 2
    seen_normal, seen_abnormal = [], []
    for _ in range(3):
        batch = sampler.next_batch()
        assert batch.features.shape == (4, 4, 3) and batch.features.dtype == torch.float32
        assert batch.labels.tolist() == [0.0, 0.0, 1.0, 1.0]
        rows = batch.features[:, 0, 0].long()
        assert batch.video_index.tolist() == rows.tolist() and batch.start is None
        assert batch.class_index.tolist() == [labels[r] for r in rows.tolist()]
        assert batch.features[:, :, 2].tolist() == [[0, 1, 2, 3]] * 4  # bags keep their order
        pairs = [(int(v), int(c)) for v, c in batch.features[:, 0, :2]]
        seen_normal += pairs[:2]
        seen_abnormal += pairs[2:]
    # one epoch = every (video, crop) of each class exactly once
    assert sorted(seen_normal) == [(v, c) for v in (0, 1, 2) for c in (0, 1)]
    assert sorted(seen_abnormal) == [(v, c) for v in (3, 4, 5) for c in (0, 1)]
    assert sampler.state() == {"epoch": 1, "position": 0} and sampler.at_epoch_start


def test_balanced_reuses_the_smaller_class_and_resumes_exactly():
    videos = _bag_videos([0, 0, 0, 0, 0, 1], crops=1)
    a = build_sampler("balanced", videos, SamplerConfig(batch_per_class=2), seed=5)
    batches = [a.next_batch() for _ in range(7)]
    assert all(b.labels.tolist() == [0, 0, 1, 1] for b in batches)
    b = build_sampler("balanced", videos, SamplerConfig(batch_per_class=2), seed=5)
    for _ in range(4):
        b.next_batch()
    state = b.state()
    c = build_sampler("balanced", videos, SamplerConfig(batch_per_class=2), seed=5)
    c.load_state(state)
    for expect in batches[4:]:
        assert torch.equal(c.next_batch().features, expect.features)
    d = build_sampler("balanced", videos, SamplerConfig(batch_per_class=2), seed=6)
    assert not all(torch.equal(d.next_batch().features, x.features) for x in batches[:3])


def test_balanced_needs_both_labels():
    with pytest.raises(ValueError, match="needs normal and abnormal training videos"):
        build_sampler("balanced", _bag_videos([0, 0]), SamplerConfig(batch_per_class=1), seed=0)


def _recipe(crop_mode: str):
    from wsvad.scoring.recipe import ScoringRecipe

    return ScoringRecipe(
        crop_mode=crop_mode, score_on="snippets", bag_rule="rtfm", bag_pool="mean", bag_count=32
    )


@pytest.fixture
def counting_store(tmp_path) -> FeatureStore:
    """Snippet t of crop c of video v holds [t, c, v]; lengths 10, 3 and 8."""
    store = FeatureStore.create(
        tmp_path / "count",
        {"feature_shape": [3], "dtype": "float32", "crops": 2, "backbone": "x", "config_hash": "c"},
    )
    for v, n in enumerate([10, 3, 8]):
        feats = np.zeros((n, 2, 3), dtype=np.float32)
        feats[:, :, 0] = np.arange(n)[:, None]
        feats[:, :, 1] = [0, 1]
        feats[:, :, 2] = v
        store.write_video(f"v{v}", feats, {"split": "train", "label": v % 2, "n_snippets": n})
    return store


def test_random_consecutive_windows_are_consecutive_and_cover_every_window(counting_store):
    infos = _infos([0, 1, 0], [10, 3, 8])
    videos = SnippetVideos(counting_store, infos, _recipe("separate"))
    sampler = build_sampler(
        "random_consecutive", videos, SamplerConfig(window=4, windows_per_step=2), seed=0
    )
    # starts: v0 (10) -> 0, 4, 6 (tail aligned to the end); v1 (3) -> 0 (padded); v2 (8) -> 0, 4; x
    # 2 crops
    assert sampler.steps_per_epoch == 6
    seen = []
    for _ in range(6):
        batch = sampler.next_batch()
        assert batch.features.shape == (2, 4, 3)
        for row, vid, start in zip(
            batch.features, batch.video_index.tolist(), batch.start.tolist(), strict=True
        ):
            assert (row[:, 2] == vid).all()
            expect = [
                min(start + i, infos[vid].n_snippets - 1) for i in range(4)
            ]  # v1 repeats its last snippet
            assert row[:, 0].tolist() == expect
            seen.append((vid, int(row[0, 1]), start))
        assert batch.labels.tolist() == [float(infos[v].label) for v in batch.video_index.tolist()]
    assert sorted(seen) == sorted(
        (v, c, s)
        for v, starts in ((0, [0, 4, 6]), (1, [0]), (2, [0, 4]))
        for c in (0, 1)
        for s in starts
    )


def test_random_consecutive_crop_mean_and_resume(counting_store):
    infos = _infos([0, 1, 0], [10, 3, 8])
    videos = SnippetVideos(counting_store, infos, _recipe("mean"))
    cfg = SamplerConfig(window=4, windows_per_step=1)
    a = build_sampler("random_consecutive", videos, cfg, seed=3)
    first = [
        a.next_batch() for _ in range(8)
    ]  # crosses into the second epoch (6 windows per epoch)
    assert all(float(b.features[0, 0, 1]) == 0.5 for b in first)  # mean of crop ids 0 and 1
    b = build_sampler("random_consecutive", videos, cfg, seed=3)
    b.load_state({"epoch": 0, "position": 5})
    assert [torch.equal(b.next_batch().features, x.features) for x in first[5:]] == [
        True,
        True,
        True,
    ]
    assert videos[1].shape == (1, 3, 3)  # TrainVideos view: (K, N, *F)
