"""Suspect videos in extraction: a truncated MP4 and MKV and an AVI with null frames decode
without an error; ``on_suspect: store`` (the default) keeps them with a ``suspect`` attr, a summary
warning and a line in ``wsvad info``; ``fail`` records them failed with the reason (exit 3);
``wsvad check`` flags the same videos in the same words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from wsvad.cli import run
from wsvad.cli.app import console
from wsvad.errors import EXIT_PARTIAL
from wsvad.extract.config import ExtractConfig
from wsvad.extract.run import run_extract
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

SMALL = {"backbone": "random3d", "resize": "short64", "crop_size": 48, "crops": 1}
CLI_SMALL = [
    *("--workers", "0", "--backbone", "random3d", "--resize", "short64", "--crops", "1"),
    *("--set", "crop_size=48"),
]
CUT = "decoded 36 of the 120 frames the header declares; 36 frames at 25 fps span 1.44 s"
NULLS = (
    "decoded 40 of the 235 frames the header declares; 40 frames at 15 fps span 2.67 s, the "
    "container declares 15.67 s (timeline squeezed 5.9x); the data spans the declared 15.67 s: "
    "frames missing in between (null frames, variable frame rate, undecodable frames)"
)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(console, "width", 400)  # rich wraps tables at 80 columns otherwise


@pytest.fixture
def dataset(tmp_path, make_noise_video, cut_video) -> Path:
    make_noise_video("videos/good.mp4", n_frames=40)
    cut_video(make_noise_video("videos/cut.mp4", options={"movflags": "faststart"}), 36)
    cut_video(make_noise_video("videos/cutmkv.mkv"), 36)
    pts = [6 * i for i in range(40)]
    make_noise_video("videos/nulls.avi", n_frames=40, fps=15, codec="mpeg4", pts=pts)
    return tmp_path / "videos"


def cfg_for(root: Path, out: Path, **overrides) -> ExtractConfig:
    return ExtractConfig.model_validate(
        {"dataset": "folder", "root": root, "out": out, "cluster": {"kind": "inline"}, **SMALL}
        | overrides
    )


def test_suspects_are_stored_with_their_facts_a_warning_and_an_info_line(dataset, tmp_path, capsys):
    args = ["extract", "--dataset", "folder", "--root", str(dataset), *CLI_SMALL]
    assert run([*args, "--out", str(tmp_path / "store")]) == 0
    out = capsys.readouterr()
    assert "4 extracted, 0 already complete, 0 failed, 4 selected" in out.out
    # (without the progress reporter's final line: stderr is not a terminal here)
    err = [line for line in out.err.splitlines() if not line.startswith("extract: ")]
    assert err[0].startswith("warning: 3 suspect video(s) stored, decoded length disagrees")
    assert err[1].startswith(f"  cut: {CUT}") and err[1].endswith(": cut file")
    assert err[2].startswith("  cutmkv: 36 frames at 25 fps span 1.44 s, the container declares")
    assert err[3] == f"  nulls: {NULLS}"
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_attrs("good")["suspect"] is None
    cut = store.video_attrs("cut")
    assert cut["n_frames"] == 36 and store.read("cut").shape[0] == 3  # 36 frames, 16-frame pad
    assert (cut["suspect"]["cause"], cut["suspect"]["findings"]) == (
        "truncated",
        ["frames", "duration"],
    )
    assert cut["suspect"]["declared"]["frames"] == 120 and cut["suspect"]["decoded"] == {
        "frames": 36,
        "fps": 25.0,
        "duration": 1.44,
    }
    nulls = store.video_attrs("nulls")["suspect"]
    assert (nulls["cause"], nulls["declared"]["frames"], nulls["decoded"]["frames"]) == (
        "dropped-frames",
        235,
        40,
    )
    assert json.loads(json.dumps(nulls)) == nulls  # plain JSON
    assert run(["info", str(tmp_path / "store")]) == 0
    info = capsys.readouterr().out
    assert re.search(r"videos suspect\s+│ 3 ", info)
    assert "suspect videos, stored; decoded length disagrees (3):" in info
    assert f"  cut [truncated]: {CUT}" in info and f"  nulls [dropped-frames]: {NULLS}" in info


def test_on_suspect_fail_records_them_failed_with_the_reason(dataset, tmp_path, capsys):
    summary = run_extract(cfg_for(dataset, tmp_path / "store", on_suspect="fail"))
    assert (summary.extracted, sorted(summary.failures), summary.suspects) == (
        1,
        ["cut", "cutmkv", "nulls"],
        {},
    )
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_ids() == ["good"]
    failures = store.failures()
    assert failures["nulls"] == {
        "video_id": "nulls",
        "source": "nulls.avi",
        "exception": "SuspectVideo",
        "reason": f"suspect video: {NULLS}",
        "decoder": "decord",  # another decoder reads the same bytes: none is tried
    }
    assert failures["cut"]["reason"].startswith(f"suspect video: {CUT}")
    args = ["extract", "--dataset", "folder", "--root", str(dataset), *CLI_SMALL]
    code = run([*args, "--out", str(tmp_path / "cli"), "--on-suspect", "fail"])
    assert code == EXIT_PARTIAL
    assert "  nulls: SuspectVideo: suspect video: decoded 40 of the 235" in capsys.readouterr().err
    assert run([*args, "--out", str(tmp_path / "cli"), "--on-suspect", "skip"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: command line: on_suspect: should be 'store' or 'fail'"
    )


def test_check_flags_the_videos_extraction_stores_as_suspect(dataset, tmp_path, capsys):
    assert run(["check", "--dataset", "folder", "--root", str(dataset), "--probe", "all"]) == 0
    flagged = {
        line.split(": ", 1)[0].split()[-1]: line.split(": ", 1)[1]
        for line in capsys.readouterr().out.splitlines()
        if ": suspect video (" in line
    }
    summary = run_extract(cfg_for(dataset, tmp_path / "store"))
    assert sorted(flagged) == ["cut.mp4", "cutmkv.mkv", "nulls.avi"]
    assert sorted(summary.suspects) == ["cut", "cutmkv", "nulls"]
    for rel, message in flagged.items():
        # the same frame count, fps and declared facts: the same words
        stored = summary.suspects[Path(rel).stem]
        assert message.rstrip(" │") == f"suspect video ({stored['cause']}): {stored['reason']}"


def test_a_split_suspect_video_fails_at_assembly_and_leaves_no_parts(
    tmp_path, make_noise_video, cut_video, monkeypatch, caplog
):
    import logging

    from wsvad.pipeline import cluster

    cut_video(make_noise_video("v/cut.mp4", options={"movflags": "faststart"}), 100)
    monkeypatch.setattr(cluster.InlineRunner, "n_workers", 2)  # pieces need several workers
    cfg = cfg_for(tmp_path / "v", tmp_path / "store", piece_snippets=2, on_suspect="fail")
    with caplog.at_level(logging.INFO, logger="wsvad.extract.run"):
        summary = run_extract(cfg)
    assert "cut: split into 3 pieces" in caplog.messages  # 7 snippets of its 100 frames
    assert summary.failures["cut"]["reason"].startswith(
        "suspect video: decoded 100 of the 120 frames the header declares"
    )
    assert FeatureStore.open(tmp_path / "store").video_ids() == []
    assert not tmp_entries(tmp_path / "store")
