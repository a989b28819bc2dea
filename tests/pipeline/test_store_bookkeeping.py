"""A store holds only zarr nodes: zarr.open_group(STORE) and its listings raise no warning, with
failures, locks, half-written arrays and bag caches present; legacy stores are converted."""

from __future__ import annotations

import json
import os
import socket
import warnings

import numpy as np
import pytest
import zarr

from wsvad.cli import run
from wsvad.config import load_config
from wsvad.extract.config import ExtractConfig
from wsvad.locks import holder as lock_holder
from wsvad.pipeline.bookkeeping import group_attrs, tmp_entries
from wsvad.pipeline.store import FeatureStore
from wsvad.train.cache import ensure_bag_cache


def _list_everything(path) -> list[str]:
    """Every node of the store, as a user would list it; warnings are errors here."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        group = zarr.open_group(str(path), mode="r", use_consolidated=False)
        return sorted(name for name, _ in group.members(max_depth=None))


def test_a_busy_store_lists_without_warnings(make_planted_store):
    store = make_planted_store(n_train=2, n_test=1)
    store.record_failures({"bad": {"reason": "garbage bytes"}})
    store.record_failures({"worse": {"reason": "truncated"}}, writer="shard-0-of-2")
    store.acquire_lock()  # a process is writing
    half = store.writer("half")
    half.append(np.zeros((2, *store.array(store.video_ids()[0]).shape[1:]), np.float32))
    ensure_bag_cache(store, "rtfm", "mean", 4)
    names = _list_everything(store.path)
    assert {".lock", ".tmp", "bags", "failures", "failures/shard-0-of-2", "videos"} <= set(names)
    assert any(n.startswith(".tmp/half.") for n in names)
    assert set(store.failures()) == {"bad", "worse"}
    assert group_attrs(store.path / ".lock")["pid"] == os.getpid()
    half.abort()
    store.release_lock()
    leftovers = {p.name for p in store.path.iterdir()} - {"zarr.json", "videos", "failures"}
    assert leftovers == {".tmp", "bags"} and tmp_entries(store.path) == []


def test_a_legacy_store_is_read_then_converted_by_the_next_writer(make_planted_store):
    store = make_planted_store(n_train=1, n_test=1)
    path = store.path
    (path / "failures.json").write_text(json.dumps({"a": {"reason": "x"}}))
    (path / "failures.d").mkdir()
    (path / "failures.d" / "shard-1-of-2.json").write_text(json.dumps({"b": {"reason": "y"}}))
    (path / "config.yaml").write_text("crops: 2\n")
    (path / ".tmp" / "v.host.1.abc").mkdir(parents=True)
    (path / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 11}))
    with pytest.warns(zarr.errors.ZarrUserWarning):
        zarr.open_group(str(path), mode="r", use_consolidated=False).members()
    assert set(FeatureStore.open(path).failures()) == {"a", "b"}  # read as it is
    FeatureStore.open(path).acquire_lock()  # takes over the dead pid's lock file, converts
    assert group_attrs(path / "failures") == {"a": {"reason": "x"}}
    assert group_attrs(path / "failures" / "shard-1-of-2") == {"b": {"reason": "y"}}
    assert not any((path / n).exists() for n in ("failures.json", "failures.d", "config.yaml"))
    assert lock_holder(path / ".lock")["pid"] == os.getpid()
    FeatureStore.open(path).clean_tmp()
    assert "failures/shard-1-of-2" in _list_everything(path)


def test_config_of_a_store_is_read_back_with_config_store(tmp_path, capsys):
    store = FeatureStore.create(
        tmp_path / "s",
        {
            "feature_shape": [4],
            "dtype": "float32",
            "crops": 1,
            "backbone": "random3d",
            "config": {"backbone": "random3d", "crops": 1, "overwrite": True, "batch_clips": 3},
        },
    )
    cfg = load_config(ExtractConfig, store.path)
    assert (cfg.backbone, cfg.crops, cfg.batch_clips, cfg.overwrite) == ("random3d", 1, 3, False)
    not_a_store = tmp_path / "plain"
    not_a_store.mkdir()
    code = run(["extract", "--config", str(not_a_store), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and (
        f"{not_a_store}: a folder given as --config must be a feature store made by `wsvad extract`"
        in err
    )
