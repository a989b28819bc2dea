"""The bag cache: built once next to the store, atomic, rebuilt when the store changes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr

from wsvad.errors import WsvadError
from wsvad.pipeline.bags import segment_into_bags
from wsvad.train.cache import ensure_bag_cache, load_bags
from wsvad.train.data import carve_validation, load_video_infos


def test_cache_holds_the_bags_of_every_video_and_is_reused(planted_store):
    calls = []
    path = ensure_bag_cache(
        planted_store, "rtfm", "mean", 8, progress=lambda done, total: calls.append((done, total))
    )
    ids = planted_store.video_ids()
    assert path == planted_store.path / "bags" / "rtfm-mean-T8-float32"
    assert calls[-1] == (len(ids), len(ids))
    group = zarr.open_group(str(path), mode="r")
    assert group.attrs["status"] == "complete" and group.attrs["video_ids"] == ids
    bags = group["bags"]
    assert bags.shape == (len(ids), 8, 2, 16)
    np.testing.assert_allclose(
        bags[3], segment_into_bags(planted_store.read(ids[3]), 8, "rtfm", "mean"), rtol=1e-6
    )
    assert group["n_snippets"][:].tolist() == [planted_store.array(v).shape[0] for v in ids]
    mtime = os.stat(path / "zarr.json").st_mtime_ns
    calls.clear()
    assert (
        ensure_bag_cache(planted_store, "rtfm", "mean", 8, progress=lambda *a: calls.append(a))
        == path
    )
    assert calls == [] and os.stat(path / "zarr.json").st_mtime_ns == mtime
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no tmp debris


def test_cache_is_rebuilt_when_the_store_changes(planted_store):
    path = ensure_bag_cache(planted_store, "rtfm", "max", 4)
    extra = np.ones((5, 2, 16), dtype=np.float32)
    planted_store.write_video("zz_new", extra, {"split": "train", "label": 0})
    ensure_bag_cache(planted_store, "rtfm", "max", 4)
    group = zarr.open_group(str(path), mode="r")
    assert group.attrs["video_ids"][-1] == "zz_new"
    np.testing.assert_allclose(group["bags"][-1], np.ones((4, 2, 16)))
    planted_store.update_attrs(config_hash="changed")
    ensure_bag_cache(planted_store, "rtfm", "max", 4)
    assert zarr.open_group(str(path), mode="r").attrs["store_fingerprint"] == "changed"


def test_load_bags_crop_modes_and_float16(planted_store):
    ids = planted_store.video_ids()[:3]
    path32 = ensure_bag_cache(planted_store, "rtfm", "mean", 8)
    sep = load_bags(path32, ids, "separate")
    mean = load_bags(path32, ids, "mean")
    assert sep.shape == (3, 8, 2, 16) and mean.shape == (3, 8, 1, 16)
    np.testing.assert_allclose(mean[:, :, 0], sep.mean(axis=2), rtol=1e-6)
    path16 = ensure_bag_cache(planted_store, "rtfm", "mean", 8, dtype="float16")
    half = load_bags(path16, ids, "separate")
    assert half.dtype == np.float16 and half.nbytes * 2 == sep.nbytes
    np.testing.assert_allclose(half.astype(np.float32), sep, atol=2e-3)
    with pytest.raises(WsvadError, match=r"bag cache lacks 1 videos, e.g. \['nope'\]"):
        load_bags(path32, ["nope"], "mean")


def test_read_only_store_caches_under_the_fallback(planted_store, tmp_path, monkeypatch):
    real_access = os.access
    # Tests run as root here, so chmod would not stop writes: make the store look read-only instead.
    monkeypatch.setattr(
        "wsvad.train.cache.os.access",
        lambda p, mode: (
            False if str(p).startswith(str(planted_store.path)) else real_access(p, mode)
        ),
    )
    with pytest.raises(
        WsvadError, match="store is read-only and no other place for the bag cache was given"
    ):
        ensure_bag_cache(planted_store, "rtfm", "mean", 8)
    path = ensure_bag_cache(planted_store, "rtfm", "mean", 8, fallback_dir=tmp_path / "fallback")
    assert path == tmp_path / "fallback" / "rtfm-mean-T8-float32"
    assert not (planted_store.path / "bags").exists()


def test_labels_from_store_attrs_and_validation_carve(planted_store):
    infos, class_names, report = load_video_infos(planted_store)
    assert class_names == ["Normal", "Planted"] and report.clean
    by_id = {v.video_id: v for v in infos}
    assert (
        by_id["test_abnormal_00"].intervals is not None
        and by_id["test_abnormal_00"].class_index == 1
    )
    assert by_id["train_normal_00"].intervals is None and by_id["train_normal_00"].class_index == 0
    train = [v for v in infos if v.split == "train"]
    kept, held = carve_validation(train, 0.25, seed=0)
    assert [v.label for v in held].count(0) == 3 and [v.label for v in held].count(1) == 3
    assert (
        not {v.video_id for v in kept} & {v.video_id for v in held} and len(kept) + len(held) == 24
    )
    assert [v.video_id for v in carve_validation(train, 0.25, seed=0)[1]] == [
        v.video_id for v in held
    ]
    assert [v.video_id for v in carve_validation(train, 0.25, seed=1)[1]] != [
        v.video_id for v in held
    ]


def test_unlabelled_store_videos_are_reported(make_planted_store):
    store = make_planted_store("bare", n_train=1, n_test=1, labels_in_attrs=False)
    infos, class_names, report = load_video_infos(store)
    assert infos == [] and class_names == ["Normal"]
    assert report.unlabelled == store.video_ids() and not report.clean


@pytest.mark.parametrize(("rule", "pool"), [("sultani", "mean"), ("rtfm", "max")])
def test_crop_mean_runs_train_on_the_bags_they_are_scored_on(planted_store, rule, pool):
    """#15.4: crops are averaged before the bags are pooled (and L2-normalised under the Sultani
    rule): the cached training bags equal the inputs ``score_features`` gives the detector."""
    from wsvad.scoring.recipe import ScoringRecipe, model_sequences

    recipe = ScoringRecipe(
        crop_mode="mean", score_on="bags", bag_rule=rule, bag_pool=pool, bag_count=4
    )
    path = ensure_bag_cache(planted_store, rule, pool, 4, recipe=recipe)
    assert path.name == f"{rule}-{pool}-T4-float32-cropmean"
    vid = planted_store.video_ids()[0]
    raw = planted_store.read(vid)  # (N, 2, 16)
    trained = load_bags(path, [vid], "mean")[0]  # (T, 1, 16)
    np.testing.assert_array_equal(trained[:, 0], model_sequences(recipe, raw)[0])
    # Bagging each crop first and averaging the bags (the old order) gives other inputs.
    per_crop_first = segment_into_bags(raw, 4, rule, pool).mean(axis=1)
    assert np.abs(per_crop_first - trained[:, 0]).max() > 1e-2
    if rule == "sultani":
        np.testing.assert_allclose(np.linalg.norm(trained[:, 0], axis=1), 1.0, rtol=1e-5)
        assert np.linalg.norm(per_crop_first, axis=1).max() < 0.99
