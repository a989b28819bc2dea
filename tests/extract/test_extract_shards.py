"""Job-array shards (inline): setup, shards into one store, per-writer failures, the completeness
check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_OK, EXIT_PARTIAL, WsvadError
from wsvad.extract.config import ExtractConfig
from wsvad.extract.run import run_extract
from wsvad.extract.shards import check_store, prepare_store, shard_records
from wsvad.pipeline.bookkeeping import group_attrs
from wsvad.pipeline.store import FeatureStore

SMALL = {
    "backbone": "random3d",
    "resize": "short64",
    "crop_size": 48,
    "crops": 5,
    "cluster": {"kind": "inline", "threads_per_worker": 1},
}
CLI_SMALL = [
    "--backbone",
    "random3d",
    "--set",
    "resize=short64",
    "--set",
    "crop_size=48",
    "--crops",
    "5",
    "--workers",
    "0",
    "--threads-per-worker",
    "1",
]


def cfg_for(root: Path, out: Path, **overrides) -> ExtractConfig:
    return ExtractConfig.model_validate(
        {"dataset": "folder", "root": root, "out": out, **SMALL, **overrides}
    )


@pytest.fixture
def dataset(tmp_path, make_video):
    for i, n in enumerate([20, 33, 17, 40]):
        make_video(f"videos/v{i}.mp4", n_frames=n, size=(64, 48), seed=i)
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"junk" * 50)
    return tmp_path / "videos"


def test_shards_are_round_robin_over_sorted_ids_and_validated(dataset):
    from wsvad.data import load_dataset

    records = load_dataset("folder", dataset).records
    assert [r.video_id for r in shard_records(records, "0/2")] == ["broken", "v1", "v3"]
    assert [r.video_id for r in shard_records(records, "1/2")] == ["v0", "v2"]
    assert [r.video_id for r in shard_records(records, "4/5")] == ["v3"]
    assert [r.video_id for r in shard_records(records, "5/6")] == []
    with pytest.raises(ValueError, match="shard must be K/N with 0 <= K < N, got '2/2'"):
        ExtractConfig(shard="2/2")
    assert ExtractConfig(shard=" 01/3").shard == "1/3"


def test_shards_fill_the_store_identically_to_one_run(dataset, tmp_path):
    whole = run_extract(cfg_for(dataset, tmp_path / "whole"))
    assert set(whole.failures) == {"broken"}
    out = tmp_path / "sharded"
    with pytest.raises(
        WsvadError, match=r"sharded: no feature store yet; create it first .* --prepare-only"
    ):
        run_extract(cfg_for(dataset, out, shard="0/2"))
    store, selected = prepare_store(cfg_for(dataset, out))
    assert selected == 5 and store.attrs["expected_videos"] == ["broken", "v0", "v1", "v2", "v3"]
    before = check_store(cfg_for(dataset, out))
    assert (before.expected, before.done, before.missing, before.complete) == (
        5,
        0,
        sorted(before.missing),
        False,
    )
    assert len(before.missing) == 5
    first = run_extract(cfg_for(dataset, out, shard="0/2"))
    second = run_extract(cfg_for(dataset, out, shard="1/2"))
    assert (first.total, first.extracted, set(first.failures)) == (3, 2, {"broken"})
    assert (second.total, second.extracted, second.failures) == (2, 2, {})
    # each shard wrote only its own failure group; nothing in the client's table
    assert group_attrs(out / "failures") == {}
    per_writer = group_attrs(out / "failures" / "shard-0-of-2")
    assert list(per_writer) == ["broken"] and per_writer["broken"]["source"] == "broken.mp4"
    assert group_attrs(out / "failures" / "shard-1-of-2") == {}
    a, b = FeatureStore.open(tmp_path / "whole"), FeatureStore.open(out)
    assert a.video_ids() == b.video_ids() == ["v0", "v1", "v2", "v3"]
    for vid in a.video_ids():
        np.testing.assert_array_equal(a.read(vid), b.read(vid))
        assert a.video_attrs(vid)["n_frames"] == b.video_attrs(vid)["n_frames"]
    assert set(b.failures()) == {"broken"}
    after = check_store(cfg_for(dataset, out))
    assert (after.done, set(after.failed), after.missing, after.complete) == (
        4,
        {"broken"},
        [],
        False,
    )


def test_a_video_completed_later_is_no_longer_a_failure(dataset, tmp_path, make_video):
    out = tmp_path / "store"
    prepare_store(cfg_for(dataset, out))
    run_extract(cfg_for(dataset, out, shard="0/2"))
    assert set(FeatureStore.open(out).failures()) == {"broken"}
    make_video(
        "videos/broken.mp4", n_frames=18, size=(64, 48), seed=9
    )  # the user replaced the file
    summary = run_extract(cfg_for(dataset, out))  # an ordinary (unsharded) run resumes the store
    assert (summary.skipped, summary.extracted, summary.failures) == (2, 3, {})
    store = FeatureStore.open(out)
    assert store.failures() == {} and check_store(cfg_for(dataset, out)).complete
    # the shard's own file still names it, but a complete video is never reported as failed
    assert "broken" in group_attrs(out / "failures" / "shard-0-of-2")


def test_shard_locks_are_per_shard(dataset, tmp_path):
    store, _ = prepare_store(cfg_for(dataset, tmp_path / "store"))
    store.acquire_lock(".lock-shard-0-of-2")
    store.acquire_lock(".lock-shard-1-of-2")  # another shard writes other videos: allowed
    store.acquire_lock()  # the store-wide lock is separate too
    with pytest.raises(WsvadError, match="another wsvad process .* is writing this store"):
        store.acquire_lock(".lock-shard-0-of-2")
    for name in (".lock-shard-0-of-2", ".lock-shard-1-of-2", ".lock"):
        store.release_lock(name)
    assert not list((tmp_path / "store").glob(".lock*"))


def test_cli_prepare_shards_and_check(dataset, tmp_path, capsys):
    out = tmp_path / "store"
    base = ["extract", "--dataset", "folder", "--root", str(dataset), "--out", str(out), *CLI_SMALL]
    assert run([*base, "--prepare-only"]) == EXIT_OK
    assert "ready for 5 video(s) (0 already complete)" in capsys.readouterr().out
    assert run([*base, "--check-only"]) == EXIT_PARTIAL
    captured = capsys.readouterr()
    assert "0 of 5 complete, 0 failed, 5 missing" in captured.out and "missing v3" in captured.err
    assert run([*base, "--shard", "1/2"]) == EXIT_OK
    assert run([*base, "--shard", "0/2"]) == EXIT_PARTIAL  # broken.mp4 fails in shard 0
    capsys.readouterr()
    assert run([*base, "--check-only"]) == EXIT_PARTIAL
    captured = capsys.readouterr()
    assert "4 of 5 complete, 1 failed, 0 missing" in captured.out
    assert "failed broken: " in captured.err
    (dataset / "broken.mp4").unlink()
    assert run([*base, "--check-only"]) == EXIT_OK
    assert "4 of 4 complete, 0 failed, 0 missing" in capsys.readouterr().out
    assert run([*base, "--check-only", "--prepare-only"]) == 1
    assert "--prepare-only and --check-only exclude each other" in capsys.readouterr().err
    assert run([*base, "--shard", "0/2", "--overwrite"]) == 1
    assert "--overwrite is refused for a shard" in capsys.readouterr().err
