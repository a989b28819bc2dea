"""The bag cache: every video's T bags computed once and kept next to the store.

Layout: ``STORE/bags/<rule>-<pool>-T<k>-<dtype>[-cropmean]/`` is a zarr group holding ``bags``
``[V, T, C, *F]`` (``C = 1`` with ``-cropmean``: crops averaged before the bags are cut, see
:func:`wsvad.scoring.recipe.training_bags`; one chunk per video, uncompressed: features hardly
compress and reads must be fast) and ``n_snippets`` ``[V]``; its attrs name the video ids, the
rule and the store's ``config_hash``. The group is built in ``STORE/bags/.tmp-*`` and renamed
into place, so the rename is the completion marker, as for videos. A cache whose store fingerprint
or video list no longer matches the store is rebuilt. When the store is read-only the cache goes
under the run directory.

Memory: building streams one video at a time, so raw features (35 GB for UCF 10-crop I3D) are
never all in memory. Training then LOADS the cached bags into RAM (``load_bags``) instead of
memory-mapping them: a balanced step gathers 60 random videos, and 60 zarr chunk reads per step
would cost more than the model itself. UCF 10-crop I3D bags are 1,610 x 32 x 10 x 1024 x 4 B =
2.1 GB (1.05 GB with ``bags.dtype: float16``; 0.21 GB with ``crop_mode: mean``, whose cache holds
the crop mean only).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import zarr

from wsvad.config import config_hash
from wsvad.errors import WsvadError
from wsvad.pipeline.bags import segment_into_bags
from wsvad.pipeline.bookkeeping import ensure_group
from wsvad.pipeline.store import FeatureStore
from wsvad.scoring.recipe import ScoringRecipe, input_key, training_bags

log = logging.getLogger(__name__)
SCHEMA = "wsvad.bags/1"


def store_fingerprint(store: FeatureStore) -> str:
    """The store's ``config_hash``, or a hash of its attrs when it has none (imported stores)."""
    attrs = store.attrs
    return str(
        attrs.get("config_hash") or config_hash({k: v for k, v in attrs.items() if k != "created"})
    )


def cache_name(
    rule: str, pool: str, count: int, dtype: str, recipe: ScoringRecipe | None = None
) -> str:
    return f"{rule}-{pool}-T{count}-{dtype}{input_key(recipe) if recipe else ''}"


def _is_valid(path: Path, fingerprint: str, video_ids: list[str]) -> bool:
    if not (path / "zarr.json").is_file():
        return False
    try:
        attrs = dict(zarr.open_group(str(path), mode="r", use_consolidated=False).attrs)
    except Exception:  # noqa: BLE001 - any unreadable cache is simply rebuilt
        return False
    return (
        attrs.get("status") == "complete"
        and attrs.get("store_fingerprint") == fingerprint
        and attrs.get("video_ids") == video_ids
    )


def ensure_bag_cache(
    store: FeatureStore,
    rule: str,
    pool: str,
    count: int,
    dtype: str = "float32",
    fallback_dir: Path | None = None,
    progress=None,
    recipe: ScoringRecipe | None = None,
) -> Path:
    """Return the path of an up-to-date bag cache for every complete video, building it if needed.

    Args:
        store: the feature store.
        rule, pool, count: bag rule, pooling and T (see wsvad.pipeline.bags).
        dtype: ``float32`` or ``float16``.
        fallback_dir: where to put the cache when the store is not writable.
        progress: optional ``callable(done, total)`` called after each video while building.
        recipe: the run's scoring recipe (its bag settings are ``rule``, ``pool``, ``count``): the
            cached bags are its training inputs (:func:`wsvad.scoring.recipe.training_bags`), e.g.
            crops averaged first. ``None``: every crop bagged as stored.
    """
    if recipe is not None and (recipe.bag_rule, recipe.bag_pool, recipe.bag_count) != (
        rule,
        pool,
        count,
    ):
        raise ValueError(f"recipe bags differ from {rule}/{pool}/{count}: {recipe}")
    video_ids = _checked_video_ids(store, count)
    fingerprint = store_fingerprint(store)
    name = cache_name(rule, pool, count, dtype, recipe)
    parent = _cache_parent(store, fallback_dir)
    final = parent / name
    if _is_valid(final, fingerprint, video_ids):
        return final
    ensure_group(parent)  # a zarr group, so listings of the store stay free of warnings
    tmp = parent / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    try:
        bagger = _bagger(store, rule, pool, count, recipe)
        facts = {"rule": rule, "pool": pool, "count": count, "dtype": dtype}
        facts |= {"inputs": input_key(recipe) if recipe else "", "store_fingerprint": fingerprint}
        _build(store, tmp, video_ids, bagger, facts, progress)
        if final.exists():
            stale = parent / f".stale-{name}-{uuid.uuid4().hex[:8]}"
            os.rename(final, stale)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            # Another training process published the same cache meanwhile: use theirs.
            if not _is_valid(final, fingerprint, video_ids):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _checked_video_ids(store: FeatureStore, count: int) -> list[str]:
    """The store's complete videos; refused when there are none or its segments are not ``count``
    per video."""
    video_ids = store.video_ids()
    if not video_ids:
        raise WsvadError(f"{store.path}: the store holds no complete video")
    bagged = store.attrs.get("bagged")
    if bagged and int(bagged["T"]) != count:
        # Re-pooling segment means into another number of bags would mix segments unevenly.
        raise WsvadError(
            f"{store.path}: the store already holds {bagged['T']} {bagged['rule']} segments per "
            f"video; train it with bags.count={bagged['T']} (got {count})"
        )
    return video_ids


def _cache_parent(store: FeatureStore, fallback_dir: Path | None) -> Path:
    """``STORE/bags``, or ``fallback_dir`` when the store is read-only."""
    parent = store.path / "bags"
    if not os.access(store.path, os.W_OK) or (parent.exists() and not os.access(parent, os.W_OK)):
        if fallback_dir is None:
            raise WsvadError(
                f"{store.path}: store is read-only and no other place for the bag cache was given"
            )
        parent = Path(fallback_dir)
        log.warning("%s is read-only; caching bags in %s", store.path, parent)
    return parent


def _bagger(store: FeatureStore, rule: str, pool: str, count: int, recipe: ScoringRecipe | None):
    """``(N, C, *F) -> (T, K, *F)``: the cached bags of one video."""
    if recipe is not None:
        return lambda raw: training_bags(recipe, raw)
    if store.attrs.get("bagged"):
        return lambda raw: raw  # rows are already the T segment means: the identity
    return lambda raw: segment_into_bags(raw, count, rule, pool)


def _build(store, path, video_ids, bagger, facts: dict, progress) -> None:
    """Write the bags of every video (``bagger``) and ``facts`` (rule, pool, count, dtype...)."""
    dtype = facts["dtype"]
    group = zarr.open_group(str(path), mode="w", zarr_format=3)
    bags = None
    n_snippets = np.zeros(len(video_ids), dtype=np.int64)
    for row, vid in enumerate(video_ids):
        raw = store.read(vid)  # (N, C, *F): one video at a time
        if len(raw) == 0:
            raise WsvadError(f"{store.path}: video {vid!r} has no snippets")
        one = bagger(raw)  # (T, K, *F)
        if bags is None:  # the shape of the first video's bags is every video's
            shape = (len(video_ids), *one.shape)
            bags = group.create_array(
                "bags",
                shape=shape,
                chunks=(1, *shape[1:]),
                dtype=dtype,
                compressors=None,
                fill_value=0,
            )
        bags[row] = one.astype(dtype)
        n_snippets[row] = len(raw)
        if progress is not None:
            progress(row + 1, len(video_ids))
    group.create_array("n_snippets", data=n_snippets, chunks=(len(video_ids),), compressors=None)
    group.attrs.update(
        {
            "schema": SCHEMA,
            **facts,
            "video_ids": video_ids,
            "status": "complete",
        }
    )


def load_bags(cache: Path, video_ids: list[str], crop_mode: str) -> np.ndarray:
    """Load the cached bags of ``video_ids`` into memory, ``(V, T, K, *F)``.

    ``K`` is the number of crops for ``crop_mode="separate"`` and 1 for ``"mean"`` (averaged video
    by video, so the 10-crop array is never held whole) and ``"inside"``, whose samples hold every
    crop: ``(V, T, 1, C, *F)``. The cache's dtype is kept (float16 stays float16; batches are
    converted to float32 when they are drawn).
    """
    group = zarr.open_group(str(cache), mode="r", use_consolidated=False)
    index = {vid: i for i, vid in enumerate(group.attrs["video_ids"])}
    missing = [vid for vid in video_ids if vid not in index]
    if missing:
        raise WsvadError(f"{cache}: bag cache lacks {len(missing)} videos, e.g. {missing[:3]}")
    bags = group["bags"]
    if crop_mode == "inside":
        t, *crops_and_feat = bags.shape[1:]
        out = np.empty((len(video_ids), t, 1, *crops_and_feat), dtype=bags.dtype)
        for row, vid in enumerate(video_ids):
            out[row, :, 0] = bags[index[vid]]  # (T, C, *F)
        return out
    _, t, c, *feat = bags.shape
    k = c if crop_mode == "separate" else 1
    out = np.empty((len(video_ids), t, k, *feat), dtype=bags.dtype)
    for row, vid in enumerate(video_ids):
        one = bags[index[vid]]  # (T, C, *F)
        out[row] = (
            one if crop_mode == "separate" else one.astype(np.float32).mean(axis=1, keepdims=True)
        )
    return out
