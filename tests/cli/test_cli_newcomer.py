"""The command line where a new user tripped (issue #17): --version, `wsvad detectors`, progress
lines in logs, bad usage exits 2, errors in the user's words, one line on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wsvad import __version__
from wsvad.cli import run
from wsvad.cli.progress import Reporter
from wsvad.config import load_config
from wsvad.detectors import list_detectors
from wsvad.detectors.papers import PAPERS
from wsvad.pipeline.store import FeatureStore
from wsvad.train import TrainConfig, run_train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    from wsvad.cli.app import console, err_console

    # the private field: setting the `width` property would leave the old width pinned after it
    monkeypatch.setattr(console, "_width", 250)
    monkeypatch.setattr(err_console, "_width", 250)


def test_version(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out == f"wsvad {__version__}\n"


def test_detectors_lists_paper_features_store_and_configs(capsys):
    assert run(["detectors"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert sorted(k for k in rows if k) == list_detectors()
    assert "Sultani et al., CVPR 2018" in rows["mil"] and "ucf_mil" in rows["mil"]
    assert "[7, D]" in rows["dam"] and "snippets (not --segments)" in rows["claws"]
    assert "  mil: offline needs the whole video; stream: the last 32 snippets" in out
    assert "  salient: offline needs its bag of split_size = 28 snippets" in out
    papers_md = (REPO / "docs" / "papers.md").read_text()
    for name in list_detectors():
        assert f"| `{name}` | {PAPERS[name]}" in papers_md


def test_reporter_writes_a_line_every_n_seconds_when_not_a_terminal(capsys):
    now = [100.0]
    with Reporter("extract", "videos", every=30, terminal=False, clock=lambda: now[0]) as rep:
        rep.update(0, 40, "warming up")
        for t, done in ((10, 2), (31, 10), (45, 15), (62, 20)):
            now[0] = 100.0 + t
            rep.update(done, 40)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [  # none at the start: a quick command prints only its final figures
        "extract: 10/40 videos (25%), 0.32 videos/s, ETA 1m33s",
        "extract: 20/40 videos (50%), 0.32 videos/s, ETA 1m02s",
    ]


def test_train_logs_progress_and_a_resume_says_its_step(planted_store, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--store", str(planted_store.path), "--out", str(out), "--detector", "mil"]
    args += ["--set", "sampler.batch_per_class=4", "--set", "bags.count=8"]
    assert run([*args, "--iterations", "10"]) == 0
    err = capsys.readouterr().err
    assert "bag cache: 36/36 videos (100%)" in err  # the bag cache is built first, per video
    assert f"{out}: 10 steps = " in err and " epochs of its training videos" in err
    assert "train: 10/10 steps (100%)" in err
    assert "done in" in err and "resumed" not in err
    # a run stopped after 4 of 10 steps (as by Ctrl-C) resumes, and says where
    cut = tmp_path / "cut"
    flags = {"store": planted_store.path, "out": cut, "detector.name": "mil", "iterations": 10}
    sets = ["sampler.batch_per_class=4", "bags.count=8"]
    assert not run_train(load_config(TrainConfig, None, flags, sets), stop_after=4).finished
    args[args.index(str(out))] = str(cut)
    assert run([*args, "--iterations", "10"]) == 0
    err = capsys.readouterr().err
    assert f"{cut}: resumed at step 4" in err and "train: 10/10 steps (100%)" in err


def test_bad_choices_are_usage_errors_exit_2(tmp_path, capsys):
    for args, message in (
        (["extract", "--crops", "3"], "Invalid value for '--crops': 3 is not one of 1, 5, 10"),
        (["score", str(tmp_path / "v.mp4")], "error: missing --run (give it on the command line"),
        (["train", "--detector", "nope"], "Invalid value for '--detector': 'nope' is not one of"),
        (["extract", "--dataset", "ufc"], "Invalid value for '--dataset': 'ufc' is not one of"),
    ):
        assert run(args) == 2, args
        assert message in capsys.readouterr().err, args


def test_config_errors_are_in_the_users_words(planted_store, tmp_path, capsys):
    store = str(planted_store.path)
    args = ["train", "--store", store, "--out", str(tmp_path / "r"), "--set", "detector=mil"]
    assert run(args) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: command line: detector: expected a section of keys (key: {name: value}), "
        "not a single value (got 'mil')\n"
    )
    assert "DetectorConfig" not in err and "Input should" not in err
    afile = tmp_path / "afile"
    afile.write_text("")
    assert run(["train", "--store", store, "--out", str(afile / "run"), "--iterations", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {afile}") and "not a directory" in err.lower()
    assert "NotADirectoryError" not in err and "Errno" not in err


def test_an_empty_video_folder_is_one_error_and_no_store(tmp_path, capsys):
    (tmp_path / "vidoes").mkdir()  # misspelt and empty
    out = tmp_path / "store"
    args = ["extract", "--dataset", "folder", "--root", str(tmp_path / "vidoes"), "--out", str(out)]
    assert run([*args, "--backbone", "random3d", "--crops", "1"]) == 1
    assert capsys.readouterr().err.startswith(f"error: no videos found under {tmp_path / 'vidoes'}")
    assert not out.exists()


def test_a_failed_train_leaves_no_run_folder(planted_store, tmp_path, capsys):
    out, empty = tmp_path / "run", tmp_path / "empty"
    empty.mkdir()
    # the labels' dataset is read after the run folder and its config.yaml are started
    args = ["train", "--store", str(planted_store.path), "--out", str(out), "--iterations", "2"]
    assert run([*args, "--dataset", "ucf", "--root", str(empty)]) == 1
    assert capsys.readouterr().err.startswith(f"error: no videos found under {empty}")
    assert not out.exists()


def test_ctrl_c_is_one_line_exit_130_and_the_rerun_says_what_it_resumed(tmp_path, make_video):
    for i in range(6):
        make_video(f"v/clip{i}.mp4", n_frames=100, size=(96, 72), seed=i)
    out = tmp_path / "store"
    args = [sys.executable, "-m", "wsvad", "extract", "--dataset", "folder", "--root"]
    args += [str(tmp_path / "v"), "--out", str(out), "--backbone", "random3d", "--crops", "5"]
    args += ["--resize", "short64", "--set", "crop_size=48"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # its own process group, which Ctrl-C in a terminal signals as a whole (dask workers too)
    proc = subprocess.Popen(
        [*args, "--workers", "2"], env=env, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if FeatureStore.is_store(out) and FeatureStore.open(out).video_ids():
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if not line.startswith("extract: ")]
    assert lines == ["interrupted; run the same command again to resume"], err
    done = len(FeatureStore.open(out).video_ids())
    assert 1 <= done < 6, "the extraction finished before it could be interrupted"
    rerun = subprocess.run(
        [*args, "--workers", "0"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr.startswith(f"extract: {6 - done}/{6 - done} videos (100%), ")
    assert rerun.stderr.endswith(f"frame-crops/s, resumed: {done} videos already complete\n")
    assert f"{out}: {6 - done} extracted, {done} already complete" in rerun.stdout
    assert len(FeatureStore.open(out).video_ids()) == 6


def test_info_shows_words_not_python_reprs(make_planted_store, capsys):
    store = make_planted_store(n_train=1, n_test=1)
    store.update_attrs(fps=None, weights_sha256=None, provenance={"kind": "extracted"})
    store.record_failures(
        {"bad": {"exception": "DecodeError", "reason": "garbage", "decoder": None}}
    )
    assert run(["info", str(store.path)]) == 0
    out = capsys.readouterr().out
    fps = next(line for line in out.splitlines() if "│ fps" in line)
    assert "native (not resampled)" in fps
    assert "kind: extracted" in out and "bad [no decoder] DecodeError: garbage" in out
    assert "None" not in out and "{'" not in out
