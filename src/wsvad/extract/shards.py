"""Job arrays: shard K of N of a dataset, the setup step that creates the store before the array
starts, and the completeness check that runs after it.

Shards write into one shared store without coordinating: each video is its own array published by
a rename, each shard takes its own lock (``.lock-shard-K-of-N``) and writes its failures to its own
``failures/shard-K-of-N`` group. Only the setup step writes the store's root metadata
(``zarr.json``), before any shard runs, so no file ever has two concurrent writers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

from wsvad.data.records import VideoRecord
from wsvad.errors import WsvadError
from wsvad.extract.config import ExtractConfig, resolve_config
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import LOCK, FeatureStore

log = logging.getLogger(__name__)


def parse_shard(shard: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` (validated by ExtractConfig: ``0 <= K < N``).

    >>> parse_shard("2/8")
    (2, 8)
    """
    k, n = shard.split("/")
    return int(k), int(n)


def shard_records(records: list[VideoRecord], shard: str) -> list[VideoRecord]:
    """Shard K of N: every N-th video of the list sorted by id, starting at the K-th.

    Round-robin over sorted ids rather than contiguous blocks, so that runs of long videos with
    similar names (UCF-Crime's classes) spread over the shards.
    """
    k, n = parse_shard(shard)
    return sorted(records, key=lambda r: r.video_id)[k::n]


def shard_writer(cfg: ExtractConfig) -> str | None:
    """The name under which a shard writes its failures (``None``: the client's own
    failure table)."""
    if cfg.shard is None:
        return None
    k, n = parse_shard(cfg.shard)
    return f"shard-{k}-of-{n}"


def lock_name(cfg: ExtractConfig) -> str:
    writer = shard_writer(cfg)
    return LOCK if writer is None else f"{LOCK}-{writer}"


def open_for_shard(cfg: ExtractConfig, expected_hash: str) -> FeatureStore:
    """Open the store a shard writes into; it must exist (made by the setup step) with these
    settings."""
    if cfg.out is None:
        raise WsvadError("no output store given (--out STORE)")
    if cfg.overwrite:
        raise WsvadError(
            f"--shard {cfg.shard}: --overwrite is refused for a shard (shards share the store); "
            "pass it to the setup step (--prepare-only) instead"
        )
    if not FeatureStore.is_store(cfg.out):
        raise WsvadError(
            f"{cfg.out}: no feature store yet; create it first with the same options and "
            "--prepare-only (the setup step of `wsvad slurm-script`), so shards never race to "
            "create it"
        )
    store = FeatureStore.open(cfg.out)
    if store.attrs.get("config_hash") != expected_hash:
        raise WsvadError(
            f"{cfg.out}: the store was made with different feature settings than shard "
            f"{cfg.shard}; run every shard with the options of the setup step"
        )
    return store


def prepare_store(cfg: ExtractConfig) -> tuple[FeatureStore, int]:
    """The setup step: create (or reopen) the store, delete ``.tmp`` debris, record the expected
    videos.

    Returns the store and the number of videos selected. Runs while no shard is running.
    """
    from wsvad.extract.run import open_store, select_records

    if cfg.root is None:
        raise WsvadError("no dataset root given (--root DIR)")
    if cfg.shard is not None:
        raise WsvadError("--prepare-only prepares the whole store: do not pass --shard with it")
    cfg = resolve_config(cfg)
    records = select_records(cfg)
    store = open_store(cfg)
    store.acquire_lock()
    try:
        initialise_store(store, cfg, records)
    finally:
        store.release_lock()
    return store, len(records)


def initialise_store(store: FeatureStore, cfg: ExtractConfig, records: list[VideoRecord]) -> None:
    """What only a sole writer may do before videos are written: delete ``.tmp`` debris of killed
    runs and record the expected videos (for ``info`` /
    ``--check-only``)."""
    removed = store.clean_tmp()
    if removed:
        log.info("%s: removed %d half-written array(s) of an interrupted run", store.path, removed)
    expected = sorted(set(store.attrs.get("expected_videos") or []) | {r.video_id for r in records})
    store.update_attrs(expected_videos=expected)


class StoreCheck(NamedTuple):
    """Completeness of a store against the dataset it was extracted from."""

    store: Path
    expected: int  # videos the dataset selects (split, --skip-invalid)
    done: int
    failed: dict[str, dict]  # video id -> failure record (from every writer)
    missing: list[str]  # neither complete nor failed: a shard that never ran, or was killed
    # half-written arrays in .tmp (killed writers), deleted by the next run or setup step
    debris: int

    @property
    def complete(self) -> bool:
        return not self.failed and not self.missing


def check_store(cfg: ExtractConfig) -> StoreCheck:
    """Compare the store at ``cfg.out`` with the videos ``cfg`` selects; writes nothing."""
    from wsvad.extract.run import select_records

    if cfg.root is None or cfg.out is None:
        raise WsvadError("--check-only needs the dataset (--dataset, --root) and the store (--out)")
    records = select_records(cfg)
    if cfg.shard is not None:
        records = shard_records(records, cfg.shard)
    store = FeatureStore.open(cfg.out)
    done = set(store.video_ids())
    expected = {r.video_id for r in records}
    failures = {vid: f for vid, f in store.failures().items() if vid in expected}
    missing = sorted(expected - done - set(failures))
    debris = len(tmp_entries(store.path))
    return StoreCheck(store.path, len(expected), len(expected & done), failures, missing, debris)
