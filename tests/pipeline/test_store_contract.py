"""The feature store contract (schema wsvad.features/1): completion by rename, config guard,
failures, lock."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest

from wsvad.errors import WsvadError
from wsvad.locks import holder as lock_holder
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore, node_name, video_id_of

ATTRS = {
    "feature_shape": [4],
    "dtype": "float32",
    "crops": 2,
    "backbone": "random3d",
    "config_hash": "aaa",
    "config": {"tail": "pad", "crops": 2},
}


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 2, 4)).astype(np.float32)


def test_write_read_and_attrs(tmp_path):
    store = FeatureStore.create(tmp_path / "s", ATTRS)
    data = rows(70)
    with store.writer("Abuse028_x264", chunk_t=32) as writer:
        writer.append(data[:64])
        writer.append(data[64:])
        writer.commit({"n_frames": 1120, "split": "train"})
    reopened = FeatureStore.open(tmp_path / "s")
    np.testing.assert_array_equal(reopened.read("Abuse028_x264"), data)
    assert reopened.array("Abuse028_x264").chunks == (32, 2, 4)
    attrs = reopened.video_attrs("Abuse028_x264")
    assert (attrs["n_snippets"], attrs["status"], attrs["n_frames"]) == (70, "complete", 1120)
    assert reopened.attrs["schema"] == "wsvad.features/1" and reopened.feature_shape == (4,)
    lazy = reopened.read_all_dask()
    np.testing.assert_array_equal(lazy["Abuse028_x264"].compute(), data)
    with pytest.raises(ValueError, match=r"rows of shape \(3, 2, 5\) do not fit \[n, 2, 4\]"):
        store.writer("x").append(np.zeros((3, 2, 5)))


def test_unfinished_writer_leaves_no_video(tmp_path):
    store = FeatureStore.create(tmp_path / "s", ATTRS)
    with pytest.raises(RuntimeError, match="boom"), store.writer("v") as writer:
        writer.append(rows(5))
        raise RuntimeError("boom")
    assert store.video_ids() == [] and not store.has_video("v")
    assert not tmp_entries(tmp_path / "s")


def test_reopen_same_config_refuse_changed_config_overwrite(tmp_path):
    store = FeatureStore.create(tmp_path / "s", ATTRS)
    store.write_video("a", rows(3), {})
    assert FeatureStore.create(tmp_path / "s", ATTRS).video_ids() == ["a"]
    changed = {**ATTRS, "config_hash": "bbb", "config": {"tail": "loop", "crops": 2}}
    with pytest.raises(
        WsvadError, match=r"different config \(tail: 'pad' -> 'loop'\); use --overwrite"
    ):
        FeatureStore.create(tmp_path / "s", changed)
    assert FeatureStore.create(tmp_path / "s", changed, overwrite=True).video_ids() == []
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(WsvadError, match="exists and is not a wsvad feature store"):
        FeatureStore.create(tmp_path / "other", ATTRS)
    with pytest.raises(WsvadError, match="not a feature store"):
        FeatureStore.open(tmp_path / "other")


def test_node_names_are_safe_and_reversible():
    for vid in ["v=U6MC8JJJZSY__#1_label_G-0-0", "a b/c", "Ünïcode?", "x%41"]:
        node = node_name(vid)
        assert "/" not in node and video_id_of(node) == vid
    for bad in ["", "..", ".hidden", "__x"]:
        with pytest.raises(WsvadError, match="invalid video id"):
            node_name(bad)


def test_failures_merge_and_clear(tmp_path):
    store = FeatureStore.create(tmp_path / "s", ATTRS)
    store.record_failures({"a": {"reason": "x"}, "b": {"reason": "y"}})
    store.record_failures({"c": {"reason": "z"}}, clear=["a"])
    assert sorted(store.failures()) == ["b", "c"]
    store.write_video(
        "b", rows(2), {}
    )  # a retried video that now succeeded does not count as failed
    store.update_attrs(expected_videos=["a", "b", "c", "d"])
    summary = store.summary()
    assert (summary["done"], summary["failed"], summary["pending"]) == (1, 1, 2)


def test_lock_refuses_a_live_writer_and_takes_over_a_dead_one(tmp_path):
    store = FeatureStore.create(tmp_path / "s", ATTRS)
    lock = tmp_path / "s" / ".lock"  # a lock file of the layout before lock groups: still honoured
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))
    with pytest.raises(WsvadError, match=rf"another wsvad process \(pid {os.getppid()} on "):
        store.acquire_lock()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 11}))
    store.acquire_lock()
    assert lock_holder(lock)["pid"] == os.getpid() and (lock / "zarr.json").is_file()
    store.release_lock()
    assert not lock.exists()


def test_clean_tmp_removes_debris_only(tmp_path):
    store = FeatureStore.create(tmp_path / "s", ATTRS)
    store.write_video("done", rows(2), {})
    (tmp_path / "s" / ".tmp" / "half.host.1.abc").mkdir(parents=True)
    assert store.clean_tmp() == 1
    assert store.video_ids() == ["done"]


def test_attrs_read_without_zarr_equal_zarr_attrs(tmp_path):
    """Store and video attrs come from the zarr.json files directly (no zarr open): the same
    values zarr itself reads, nested lists, None, floats and unicode included."""
    import zarr

    store = FeatureStore.create(tmp_path / "s", ATTRS)
    attrs = {"n_frames": 1117, "fps": 29.97, "intervals": [[3, 40], [90, 120]], "suspect": None}
    store.write_video("Ünï 01", rows(4), attrs | {"classes": ["Abuse"], "label": 1})
    store.update_attrs(expected_videos=["Ünï 01"], note={"k": [1.5, None]})
    reopened = FeatureStore.open(tmp_path / "s")
    by_zarr = dict(zarr.open_array(str(tmp_path / "s" / "videos" / node_name("Ünï 01"))).attrs)
    assert reopened.video_attrs("Ünï 01") == by_zarr
    assert by_zarr["intervals"] == [[3, 40], [90, 120]] and by_zarr["n_snippets"] == 4
    group = zarr.open_group(str(tmp_path / "s"), mode="r", use_consolidated=False)
    assert reopened.attrs == dict(group.attrs) and reopened.attrs["note"] == {"k": [1.5, None]}
    with pytest.raises(WsvadError, match=r"s: no complete video 'gone' in the store"):
        reopened.video_attrs("gone")


def test_broken_metadata_is_refused_naming_the_file(tmp_path):
    store = FeatureStore.create(tmp_path / "s", ATTRS)
    store.write_video("a", rows(2), {})
    meta = tmp_path / "s" / "videos" / "a" / "zarr.json"
    meta.write_text("{not json")
    with pytest.raises(WsvadError, match=rf"{meta}: not zarr array metadata"):
        store.video_attrs("a")
    root = tmp_path / "s" / "zarr.json"
    root.write_text(json.dumps({"zarr_format": 3, "node_type": "array", "attributes": {}}))
    with pytest.raises(WsvadError, match=rf"cannot open feature store: {root} is not a zarr group"):
        FeatureStore.open(tmp_path / "s")
    root.write_text(json.dumps({"zarr_format": 2, "node_type": "group"}))
    with pytest.raises(WsvadError, match="cannot open feature store: zarr format 2"):
        FeatureStore.open(tmp_path / "s")
    root.write_text("[1, 2")
    with pytest.raises(WsvadError, match=rf"s: cannot open feature store: {root}: Expecting"):
        FeatureStore.open(tmp_path / "s")


def test_reading_attrs_does_not_import_zarr(tmp_path):
    """Opening a store and reading its attrs (what ``wsvad evaluate`` does) never imports zarr:
    its import is ~0.3 s of evaluate's start-up."""
    import subprocess
    import sys

    FeatureStore.create(tmp_path / "s", ATTRS).write_video("a", rows(3), {"n_frames": 48})
    code = (
        "import sys; from wsvad.pipeline.store import FeatureStore as F; "
        f"s = F.open({str(tmp_path / 's')!r}); "
        "print(s.video_ids(), s.video_attrs('a')['n_frames'], s.crops, 'zarr' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["['a']", "48", "2", "False"]
