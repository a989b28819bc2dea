"""run_extract end to end (inline runner, the deterministic ``random3d`` backbone, tiny videos)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from wsvad.config import load_config
from wsvad.errors import WsvadError
from wsvad.extract.config import ExtractConfig
from wsvad.extract.run import run_extract
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

SMALL = {
    "backbone": "random3d",
    "resize": "short64",
    "crop_size": 48,
    "cluster": {"kind": "inline"},
}


def cfg_for(root: Path, out: Path, **overrides) -> ExtractConfig:
    return ExtractConfig.model_validate(
        {"dataset": "folder", "root": root, "out": out, **SMALL, **overrides}
    )


@pytest.fixture
def dataset(tmp_path, make_video):
    root = tmp_path / "videos"
    make_video("videos/a.mp4", n_frames=40, size=(64, 48), seed=1)
    make_video("videos/b.avi", n_frames=37, size=(66, 50), codec="mpeg4", seed=2)
    return root


def expected_features(path: Path, cfg: ExtractConfig) -> np.ndarray:
    """The features computed the slow, obvious way: whole video in memory, one snippet per
    forward."""
    import torch

    from wsvad.extract.backbones import build_backbone, get_backbone_spec
    from wsvad.extract.crops import resize_and_crop
    from wsvad.extract.decode import iter_frames
    from wsvad.extract.snippets import n_snippets, snippet_frame_indices

    spec, model = get_backbone_spec("random3d"), build_backbone("random3d")
    crops = resize_and_crop(
        np.stack(list(iter_frames(path, "av"))), cfg.resize, cfg.crop_size, cfg.crops
    )
    L, stride = cfg.snippet_len or 16, cfg.stride or cfg.snippet_len or 16
    rows = []
    for i in range(n_snippets(len(crops), L, stride, cfg.tail)):
        clip = crops[snippet_frame_indices(i, len(crops), L, stride, cfg.tail)]  # (L, C, S, S, 3)
        with torch.inference_mode():
            rows.append(
                model(torch.from_numpy(spec.prepare(clip.transpose(1, 0, 2, 3, 4)))).numpy()
            )
    return np.stack(rows)  # (T, C, D)


def test_features_and_attrs_match_a_direct_computation(dataset, tmp_path):
    cfg = cfg_for(dataset, tmp_path / "store", tail="loop", batch_clips=1)
    summary = run_extract(cfg)
    assert (summary.total, summary.extracted, summary.skipped, summary.failures) == (2, 2, 0, {})
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_ids() == ["a", "b"]
    for vid, name, n in [("a", "a.mp4", 40), ("b", "b.avi", 37)]:
        features = store.read(vid)
        np.testing.assert_array_equal(features, expected_features(dataset / name, cfg))
        attrs = store.video_attrs(vid)
        assert (attrs["source"], attrs["n_frames"], attrs["n_snippets"], attrs["decoder"]) == (
            name,
            n,
            3,
            "decord",
        )
        assert attrs["source_size"] == (dataset / name).stat().st_size and attrs["fps"] == 25.0
        assert attrs["split"] == "test" and attrs["status"] == "complete"
    attrs = store.attrs
    assert attrs["crop_order"][:5] == ["TL", "TR", "BL", "BR", "C"] and attrs["crops"] == 10
    assert (attrs["snippet_len"], attrs["stride"], attrs["tail"], attrs["resize"]) == (
        16,
        16,
        "loop",
        "short64",
    )
    assert attrs["provenance"] == {"kind": "extracted"} and attrs["feature_shape"] == [64]
    assert attrs["config"]["crop_size"] == 48 and len(attrs["config_hash"]) == 16
    saved = load_config(ExtractConfig, tmp_path / "store")  # --config STORE
    assert (saved.snippet_len, saved.stride, saved.overwrite) == (
        16,
        16,
        False,
    )  # resolved defaults written out


def test_failures_are_recorded_and_the_rest_finishes(dataset, tmp_path, make_video):
    (dataset / "zero.mp4").write_bytes(b"")
    (dataset / "garbage.mkv").write_bytes(b"\x1a\x45\xdf\xa3" + b"junk" * 200)
    whole = make_video("whole.mp4", n_frames=40).read_bytes()
    (dataset / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    summary = run_extract(cfg_for(dataset, tmp_path / "store", crops=1))
    assert summary.extracted == 2 and sorted(summary.failures) == ["garbage", "truncated", "zero"]
    table = FeatureStore.open(tmp_path / "store").failures()
    assert table["zero"]["reason"].endswith("zero.mp4: empty file (0 bytes)")
    assert table["zero"]["exception"] == "DecodeError" and table["zero"]["decoder"] == "decord,av"
    assert table["truncated"]["source"] == "truncated.mp4" and table["truncated"]["exception"]
    assert "\n" not in table["garbage"]["reason"]


def test_too_short_for_drop_is_a_recorded_failure(tmp_path, make_video):
    make_video("v/short.mp4", n_frames=10)
    summary = run_extract(cfg_for(tmp_path / "v", tmp_path / "store", tail="drop", crops=1))
    assert summary.failures["short"]["reason"] == (
        "short.mp4: 10 frames is shorter than one 16-frame snippet (tail=drop keeps no snippet)"
    )
    assert (summary.failures["short"]["exception"], summary.failures["short"]["decoder"]) == (
        "TooShort",
        "decord",
    )


def test_resume_skips_complete_videos_and_redoes_half_written_ones(dataset, tmp_path):
    cfg = cfg_for(dataset, tmp_path / "store", crops=1)
    run_extract(cfg)
    store = FeatureStore.open(tmp_path / "store")
    before = store.read("a")
    store.delete_video("b")
    debris = tmp_path / "store" / ".tmp" / "b.host.123.deadbeef"
    debris.mkdir(parents=True)
    (debris / "zarr.json").write_text("{}")
    summary = run_extract(cfg)
    assert (summary.skipped, summary.extracted) == (1, 1)
    assert not debris.exists()
    np.testing.assert_array_equal(store.read("a"), before)
    assert store.video_ids() == ["a", "b"] and store.summary()["pending"] == 0


def test_changed_config_is_refused_unless_overwrite(dataset, tmp_path):
    run_extract(cfg_for(dataset, tmp_path / "store", crops=1))
    with pytest.raises(
        WsvadError, match=r"different config \(tail: 'pad' -> 'loop'\).*--overwrite"
    ):
        run_extract(cfg_for(dataset, tmp_path / "store", crops=1, tail="loop"))
    # decoder, device and parallelism do not change features: resuming with them is allowed
    assert run_extract(cfg_for(dataset, tmp_path / "store", crops=1, decoder="av")).skipped == 2
    summary = run_extract(
        cfg_for(dataset, tmp_path / "store", crops=1, tail="loop", overwrite=True)
    )
    assert summary.extracted == 2 and FeatureStore.open(tmp_path / "store").attrs["tail"] == "loop"


def test_a_second_writer_is_refused(dataset, tmp_path):
    run_extract(cfg_for(dataset, tmp_path / "store", crops=1))
    lock = tmp_path / "store" / ".lock"
    import socket

    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "since": 0}))
    with pytest.raises(WsvadError, match=rf"another wsvad process \(pid {os.getppid()} "):
        run_extract(cfg_for(dataset, tmp_path / "store", crops=1))
    with pytest.raises(
        WsvadError, match="another wsvad process"
    ):  # --overwrite must not wipe it either
        run_extract(cfg_for(dataset, tmp_path / "store", crops=1, tail="loop", overwrite=True))
    assert FeatureStore.open(tmp_path / "store").video_ids() == ["a", "b"]
    lock.write_text(
        json.dumps({"host": socket.gethostname(), "pid": 2**22 + 7, "since": 0})
    )  # dead pid
    assert run_extract(cfg_for(dataset, tmp_path / "store", crops=1)).skipped == 2
    assert not lock.exists()


@pytest.mark.parametrize("tail", ["loop", "pad", "drop"])
def test_long_video_pieces_assemble_to_the_unsplit_result(
    tmp_path, make_video, monkeypatch, caplog, tail
):
    from wsvad.pipeline import cluster

    make_video("v/long.mp4", n_frames=133, size=(64, 48))
    common = dict(crops=1, batch_clips=1, snippet_len=16, stride=8, tail=tail)
    run_extract(cfg_for(tmp_path / "v", tmp_path / "whole", **common))
    monkeypatch.setattr(
        cluster.InlineRunner, "n_workers", 2
    )  # splitting only pays with several workers
    with caplog.at_level(logging.INFO, logger="wsvad.extract.run"):
        run_extract(cfg_for(tmp_path / "v", tmp_path / "split", piece_snippets=4, **common))
    assert "long: split into 4 pieces" in caplog.messages
    whole, split = FeatureStore.open(tmp_path / "whole"), FeatureStore.open(tmp_path / "split")
    np.testing.assert_array_equal(split.read("long"), whole.read("long"))
    assert split.video_attrs("long")["n_frames"] == 133
    assert split.read("long").shape[0] == {"loop": 16, "pad": 16, "drop": 15}[tail]
    assert not tmp_entries(tmp_path / "split")  # parts are removed after assembly


def test_fps_resampling_and_float16(tmp_path, make_video):
    make_video("v/clip.mp4", n_frames=50, fps=25)
    run_extract(cfg_for(tmp_path / "v", tmp_path / "store", crops=1, fps=10.0, dtype="float16"))
    store = FeatureStore.open(tmp_path / "store")
    attrs = store.video_attrs("clip")
    assert (attrs["n_frames"], attrs["n_frames_sampled"], attrs["fps"], attrs["source_fps"]) == (
        50,
        20,
        10.0,
        25.0,
    )
    assert store.read("clip").dtype == np.float16 and store.read("clip").shape == (2, 1, 64)


def test_frame_folder_video(tmp_path):
    from PIL import Image

    folder = tmp_path / "v" / "01_0014"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png"
        )
    run_extract(cfg_for(tmp_path / "v", tmp_path / "store", crops=5))
    attrs = FeatureStore.open(tmp_path / "store").video_attrs("01_0014")
    assert (attrs["decoder"], attrs["n_frames"], attrs["n_snippets"]) == ("frames", 20, 2)


def test_auto_falls_back_to_pyav_when_decord_fails_mid_stream(dataset, tmp_path, monkeypatch):
    from decord._ffi.base import DECORDError

    from wsvad.extract import decode

    real = decode._iter_decord

    def flaky(path, start):
        for i, frame in enumerate(real(path, start)):
            if i == 20:
                raise DECORDError("simulated corrupt packet")
            yield frame

    monkeypatch.setattr(decode, "_iter_decord", flaky)
    cfg = cfg_for(dataset, tmp_path / "store", crops=1, batch_clips=1)
    assert run_extract(cfg).failures == {}
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_attrs("a")["decoder"] == "av" and not any(tmp_entries(tmp_path / "store"))
    np.testing.assert_array_equal(store.read("a"), expected_features(dataset / "a.mp4", cfg))
    failed = run_extract(cfg_for(dataset, tmp_path / "only-decord", crops=1, decoder="decord"))
    assert failed.failures["a"] == {
        "video_id": "a",
        "source": "a.mp4",
        "exception": "DECORDError",
        "reason": "simulated corrupt packet",
        "decoder": "decord",
    }


def test_dataset_errors_refuse_unless_skip_invalid(dataset, tmp_path):
    (dataset / "labels.csv").write_text("video,label,class\na.mp4,1,Fight\nb.avi,7,\n")
    with pytest.raises(WsvadError, match=r"dataset has 1 error\(s\): .*--skip-invalid"):
        run_extract(cfg_for(dataset, tmp_path / "store", crops=1))
    summary = run_extract(cfg_for(dataset, tmp_path / "store", crops=1, skip_invalid=True))
    assert (summary.total, summary.extracted) == (1, 1)
    attrs = FeatureStore.open(tmp_path / "store").video_attrs("a")
    assert (attrs["label"], attrs["classes"], attrs["split"]) == (1, ["Fight"], "test")


def test_progress_reports_every_forward_pass_and_every_video(dataset, tmp_path):
    events = []
    summary = run_extract(
        cfg_for(dataset, tmp_path / "store", crops=5, batch_clips=5), progress=events.append
    )
    assert events[0] == (2, 0, 0, 0, None, None)
    per_pass = [e.frame_crops for e in events if e.status is None][1:]
    assert per_pass[:3] == [80, 160, 240]  # one snippet (16 frames x 5 crops) per forward pass
    assert [(e.done, e.video_id) for e in events if e.status == "done"] == [(1, "a"), (2, "b")]
    assert events[-1].frame_crops == summary.frame_crops == 2 * 3 * 16 * 5


def test_an_unusable_backbone_stops_the_run_instead_of_failing_every_video(
    dataset, tmp_path, monkeypatch, no_cuda
):
    from wsvad.extract import worker

    def broken(*args, **kwargs):
        raise RuntimeError("weights file is truncated")

    monkeypatch.setattr("wsvad.extract.backbones.build_backbone", broken)
    monkeypatch.setattr(worker, "_MODELS", {})
    with pytest.raises(
        WsvadError,
        match=r"backbone 'random3d' on cpu: cannot be built \(weights file is truncated\)",
    ):
        run_extract(cfg_for(dataset, tmp_path / "store", crops=1))
    store = FeatureStore.open(tmp_path / "store")
    assert store.failures() == {} and not (tmp_path / "store" / ".lock").exists()
    with pytest.raises(WsvadError, match="--device cuda: CUDA is not available on this machine"):
        run_extract(cfg_for(dataset, tmp_path / "store", crops=1, device="cuda"))
