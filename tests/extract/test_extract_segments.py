"""``segments``: Sultani's 32-segment feature pipeline as an extract option; temporal I3D stores end
to end."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from wsvad.errors import WsvadError
from wsvad.extract.config import ExtractConfig, resolve_config
from wsvad.extract.run import run_extract
from wsvad.pipeline.bags import segment_into_bags
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

SMALL = {
    "backbone": "random3d",
    "resize": "short64",
    "crop_size": 48,
    "cluster": {"kind": "inline"},
    "snippet_len": 8,
    "crops": 5,
}


def cfg_for(root: Path, out: Path, **overrides) -> ExtractConfig:
    return ExtractConfig.model_validate(
        {"dataset": "folder", "root": root, "out": out, **SMALL, **overrides}
    )


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Two tiny videos extracted raw and with 4 Sultani segments (module scope: extracted once)."""
    import importlib.util

    # the conftest writer, loaded by path: a module-scope fixture cannot use the function-scope
    # make_video
    spec = importlib.util.spec_from_file_location(
        "wsvad_tests_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    write_video = conftest.write_video
    tmp = tmp_path_factory.mktemp("segments")
    write_video(tmp / "v" / "a.mp4", n_frames=60, seed=1)  # 8 snippets of 8 frames (tail pad)
    write_video(tmp / "v" / "b.mp4", n_frames=20, seed=2)  # 3 snippets: fewer than the 4 segments
    raw = run_extract(cfg_for(tmp / "v", tmp / "raw"))
    seg = run_extract(cfg_for(tmp / "v", tmp / "seg", segments=4))
    assert raw.extracted == seg.extracted == 2 and not raw.failures and not seg.failures
    return tmp, FeatureStore.open(tmp / "raw"), FeatureStore.open(tmp / "seg")


@pytest.mark.parametrize("video, n_frames, n_raw", [("a", 60, 8), ("b", 20, 3)])
def test_segments_equal_the_bag_rule_on_the_raw_snippets(stores, video, n_frames, n_raw):
    _, raw, seg = stores
    snippets = raw.read(video)  # (N, C, D)
    assert snippets.shape == (n_raw, 5, 64)
    bags = seg.read(video)
    assert bags.shape == (4, 5, 64)
    np.testing.assert_array_equal(bags, segment_into_bags(snippets, 4, "sultani"))
    np.testing.assert_allclose(np.linalg.norm(bags, axis=-1), 1.0, rtol=1e-5)  # Sultani L2 per crop
    if (
        video == "a"
    ):  # round(linspace(0, 7, 5)) = 0 2 4 5 7 (4 rounds 3.5 up): bags [0,2) [2,4) [4,5) [5,7)

        def unit(x):
            return x / np.linalg.norm(x, axis=-1, keepdims=True)

        np.testing.assert_allclose(bags[2], unit(snippets[4]), rtol=1e-6)
        np.testing.assert_allclose(
            bags[3], unit(snippets[5:7].mean(0)), rtol=1e-6
        )  # snippet 7 is in no bag
    attrs = seg.video_attrs(video)
    assert (attrs["n_frames"], attrs["n_snippets_raw"], attrs["n_snippets"]) == (n_frames, n_raw, 4)


def test_store_attrs_say_the_rows_are_segments(stores):
    _, raw, seg = stores
    assert (seg.attrs["segments"], seg.attrs["segment_rule"]) == (4, "sultani")
    assert seg.attrs["bagged"] == {
        "rule": "sultani",
        "T": 4,
    }  # the importer's name for Sultani's files
    assert (raw.attrs["segments"], raw.attrs["bagged"]) == (None, None)
    assert seg.feature_shape == raw.feature_shape == (64,)  # per row per crop, unchanged
    assert seg.attrs["config_hash"] != raw.attrs["config_hash"]
    assert not tmp_entries(seg.path)  # the raw rows were removed after segmenting


def test_raw_config_hash_is_unchanged_by_the_option():
    # stores made before the option existed must still resume: unset segments adds nothing to the
    # hash
    features = ExtractConfig().feature_config()
    assert "segments" not in features and "segment_rule" not in features
    assert ExtractConfig(segments=32).feature_config()["segments"] == 32


@pytest.mark.parametrize(
    "store, overrides, diff",
    [
        ("seg", {"segments": 3}, "segments"),  # another T
        ("seg", {"segments": 4, "segment_rule": "rtfm"}, "segment_rule"),  # another rule
        ("raw", {"segments": 4}, "segments"),  # segments into a store of snippets
        ("seg", {}, "segments"),  # snippets into a store of segments
    ],
)
def test_a_store_with_other_segments_is_refused(stores, store, overrides, diff):
    tmp, _, _ = stores
    out = tmp / store
    with pytest.raises(
        WsvadError,
        match=rf"{out}: store was made with a different config \(.*{diff}.*\); use --overwrite",
    ):
        run_extract(cfg_for(tmp / "v", out, **overrides))


def test_rtfm_rule_and_split_pieces_give_the_segments_of_the_whole_video(
    tmp_path, make_video, monkeypatch, caplog
):
    from wsvad.pipeline import cluster

    make_video("v/long.mp4", n_frames=100, size=(64, 48), seed=3)  # 13 snippets
    common = {"crops": 1, "batch_clips": 1}
    run_extract(cfg_for(tmp_path / "v", tmp_path / "raw", **common))
    monkeypatch.setattr(
        cluster.InlineRunner, "n_workers", 2
    )  # splitting only pays with several workers
    with caplog.at_level(logging.INFO, logger="wsvad.extract.run"):
        run_extract(
            cfg_for(
                tmp_path / "v",
                tmp_path / "seg",
                piece_snippets=4,
                segments=5,
                segment_rule="rtfm",
                **common,
            )
        )
    assert "long: split into 3 pieces" in caplog.messages
    raw, seg = FeatureStore.open(tmp_path / "raw").read("long"), FeatureStore.open(tmp_path / "seg")
    np.testing.assert_array_equal(seg.read("long"), segment_into_bags(raw, 5, "rtfm"))
    np.testing.assert_allclose(
        seg.read("long")[0], raw[0:2].mean(0), rtol=1e-6
    )  # linspace(0, 13, 6) -> [0, 2)
    assert (seg.video_attrs("long")["n_snippets_raw"], seg.video_attrs("long")["n_frames"]) == (
        13,
        100,
    )
    assert not tmp_entries(tmp_path / "seg")


def test_cli_segments_flags_reach_the_store(tmp_path, make_video, capsys):
    from wsvad.cli import run

    make_video("v/a.mp4", n_frames=40, seed=4)
    code = run(
        [
            "extract",
            "--root",
            str(tmp_path / "v"),
            "--out",
            str(tmp_path / "s"),
            "--backbone",
            "random3d",
            "--crops",
            "1",
            "--resize",
            "short64",
            "--set",
            "crop_size=48",
            "--workers",
            "0",
            "--segments",
            "2",
            "--segment-rule",
            "rtfm",
        ]
    )
    assert code == 0
    store = FeatureStore.open(tmp_path / "s")
    assert store.attrs["bagged"] == {"rule": "rtfm", "T": 2} and store.read("a").shape == (2, 1, 64)
    capsys.readouterr()
    assert run(["info", str(tmp_path / "s")]) == 0
    assert re.search(r"rows are\s+│ segments, 2 per video \(rtfm rule\)", capsys.readouterr().out)
    assert (
        run(
            [
                "extract",
                "--root",
                str(tmp_path / "v"),
                "--out",
                str(tmp_path / "t"),
                "--segments",
                "0",
            ]
        )
        == 1
    )


def test_keep_time_refuses_other_snippet_lengths():
    cfg = ExtractConfig(backbone="i3d", backbone_options={"keep_time": True}, snippet_len=16)
    with pytest.raises(
        WsvadError,
        match=r"backbone i3d \(keep_time=True, logits=False\) needs 64-frame snippets "
        r"\(features \[7, 1024\] per snippet\), got snippet_len 16",
    ):
        resolve_config(cfg)
    resolved = resolve_config(ExtractConfig(backbone="i3d", backbone_options={"keep_time": True}))
    assert (resolved.snippet_len, resolved.stride) == (64, 64)


def test_i3d_keep_time_cli_writes_a_t_crops_7_1024_store(tmp_path, make_video):
    import torch

    from wsvad.cli import run
    from wsvad.extract.backbones import build_backbone, get_backbone_spec
    from wsvad.extract.crops import resize_and_crop
    from wsvad.extract.decode import iter_frames

    video = make_video(
        "v/a.mp4", n_frames=64, size=(64, 48), seed=5
    )  # exactly one 64-frame snippet
    code = run(
        [
            "extract",
            "--root",
            str(tmp_path / "v"),
            "--out",
            str(tmp_path / "s"),
            "--backbone",
            "i3d",
            "--set",
            "backbone_options.keep_time=true",
            "--snippet-len",
            "64",
            "--crops",
            "1",
            "--workers",
            "0",
            "--resize",
            "short224",
        ]
    )
    assert code == 0
    store = FeatureStore.open(tmp_path / "s")
    feats = store.read("a")
    assert feats.shape == (1, 1, 7, 1024) and store.attrs["feature_shape"] == [7, 1024]
    assert store.attrs["snippet_len"] == 64 and store.attrs["backbone_options"]["keep_time"] is True
    # the same snippet through the model directly
    frames = np.stack(list(iter_frames(video, "av")))
    clip = resize_and_crop(frames, "short224", 224, 1)[:, 0][None]  # (1, L, S, S, 3)
    with torch.inference_mode():
        want = build_backbone("i3d", keep_time=True)(
            torch.from_numpy(get_backbone_spec("i3d", keep_time=True).prepare(clip))
        )
    np.testing.assert_allclose(feats[:, 0], want.numpy(), rtol=1e-4, atol=1e-4)
