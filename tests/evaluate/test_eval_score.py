"""``wsvad score``: a new video through the run's extraction settings and detector, offline and
streamed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wsvad.cli import run as cli
from wsvad.evaluate.plots import gt_runs
from wsvad.pipeline.store import FeatureStore


@pytest.fixture
def trained_run(tmp_path, make_video, monkeypatch):
    """A tiny store extracted by `wsvad extract` (random3d backbone, 1 crop) and a random MIL
    detector."""
    import torch

    from wsvad.detectors import build_detector
    from wsvad.detectors.checkpoint import save_detector
    from wsvad.scoring.recipe import ScoringRecipe

    monkeypatch.setenv("COLUMNS", "200")
    video = make_video("videos/v.mp4", n_frames=40, size=(64, 48))
    store = tmp_path / "store"
    code = cli(
        [
            "extract",
            "--dataset",
            "folder",
            "--root",
            str(video.parent),
            "--out",
            str(store),
            "--crops",
            "1",
            "--backbone",
            "random3d",
            "--workers",
            "0",
            "--resize",
            "short48",
            "--set",
            "crop_size=32",
            "--set",
            "backbone_options.dim=8",
        ]
    )
    assert code == 0
    torch.manual_seed(0)
    detector = build_detector("mil", (8,), {}).eval()
    run = tmp_path / "run"
    # The recipe of raw snippets, one crop: the expected scores below are the detector's own.
    recipe = ScoringRecipe(
        crop_mode="separate", score_on="snippets", bag_rule="rtfm", bag_pool="mean", bag_count=32
    )
    meta = {"class_names": ["Normal", "Anomaly"], "scoring": recipe.to_json()}
    save_detector(run / "model", detector, meta)
    (run / "run.json").write_text(
        json.dumps({"kind": "single", "store": str(store), "detector": "mil", "seed": 0})
    )
    with torch.no_grad():
        expected = detector.score_video(
            torch.from_numpy(FeatureStore.open(store).read("v")[:, 0])
        ).numpy()
    return video, run, expected


def _csv(path):
    rows = path.read_text().splitlines()
    return rows[0].split(","), [r.split(",") for r in rows[1:]]


def test_score_reproduces_the_training_features_and_detector(trained_run, tmp_path, capsys):
    video, run, expected = trained_run
    # Half way between the two lowest snippet scores: no score sits on the threshold, so the
    # intervals do not depend on the last bits of a score.
    low = np.sort(expected)
    threshold = float((low[0] + low[1]) / 2)
    assert (
        cli(
            [
                "score",
                str(video),
                "--run",
                str(run),
                "--threshold",
                str(threshold),
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    header, rows = _csv(tmp_path / "s" / "snippet_scores.csv")
    assert header == ["snippet", "start_frame", "end_frame", "score", "latency_ms"]
    # Same decode -> resize -> crop -> backbone as `wsvad extract`, same detector: same snippet
    # scores.
    assert np.array([float(r[3]) for r in rows]) == pytest.approx(expected, abs=1e-5)
    header, frames = _csv(tmp_path / "s" / "frame_scores.csv")
    assert header == ["frame", "time_s", "score"] and len(frames) == 40
    assert frames[1][1] == f"{1 / 25:.3f}"  # fps of the test video
    frame_scores = np.array([float(r[2]) for r in frames])
    assert frame_scores[:16] == pytest.approx(expected[0], abs=1e-5) and frame_scores[
        32:
    ] == pytest.approx(expected[2], abs=1e-5)
    runs = gt_runs(frame_scores >= threshold)
    assert runs and f"{len(runs)} anomalous interval" in out
    for start, end in runs:
        assert f"frames [{start}, {end}) ({start / 25:.2f} s - {end / 25:.2f} s)" in out
    summary = json.loads((tmp_path / "s" / "score.json").read_text())
    assert (
        summary["mode"] == "offline"
        and summary["n_frames"] == 40
        and summary["setup"]["backbone"] == "random3d"
    )
    png = (tmp_path / "s" / "timeline.png").read_bytes()
    assert png[:4] == b"\x89PNG" and len(png) > 5000


def test_stream_prints_each_snippet_with_latency(trained_run, tmp_path, capsys):
    video, run, expected = trained_run
    args = ["--run", str(run), "--threshold", "1", "--out", str(tmp_path / "s")]
    assert cli(["score", "--stream", str(video), *args]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"stream {video} (file, 25 fps), detector mil of {run}; causal: ")
    assert out[0].endswith("over the last 1 snippets; equals the offline score")
    lines = [line for line in out if line.startswith("snippet")]
    assert len(lines) == 3
    # the half-open range of snippet_scores.csv (start_frame 0, end_frame 16), on screen too
    assert lines[0].startswith("snippet     0  frames [0, 16)  score ") and lines[0].endswith(" ms")
    assert (tmp_path / "s" / "snippet_scores.csv").read_text().splitlines()[1].startswith("0,0,16,")
    # MIL scores each snippet alone, so the causal stream scores equal the offline ones.
    assert [float(line.split("score ")[1].split()[0]) for line in lines] == pytest.approx(
        expected, abs=5e-4
    )
    assert out[-1].startswith("end of stream: 3 snippets scored, 0 dropped, latency p50 ")
    header, rows = _csv(tmp_path / "s" / "snippet_scores.csv")
    assert header == ["snippet", "start_frame", "end_frame", "score", "latency_ms"]
    assert np.array([float(r[3]) for r in rows]) == pytest.approx(expected, abs=1e-5)
    summary = json.loads((tmp_path / "s" / "score.json").read_text())
    assert summary["mode"] == "stream" and summary["events"][0]["window"] == 1


def test_score_without_store_names_the_problem(trained_run, tmp_path, capsys):
    video, run, _ = trained_run
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(info | {"store": str(tmp_path / "gone")}))
    assert cli(["score", str(video), "--run", str(run)]) == 1
    assert f"the run's feature store {tmp_path / 'gone'} is gone" in capsys.readouterr().err


def test_score_missing_video_is_a_clear_error(trained_run, tmp_path, capsys):
    _, run, _ = trained_run
    assert cli(["score", str(tmp_path / "nope.mp4"), "--run", str(run)]) == 1
    assert f"error: {tmp_path / 'nope.mp4'}: no such video" in capsys.readouterr().err


def test_timeline_lines_never_take_the_shading_colour(tmp_path, monkeypatch):
    """Ground truth is shaded red and no score line is red; `wsvad score` shades its own
    prediction orange, apart from its blue score line."""
    import matplotlib.colors as mcolors

    from wsvad.evaluate import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda plt, fig, path: figures.append(fig) or path)
    gt = np.r_[np.zeros(20), np.ones(10), np.zeros(20)].astype(np.uint8)
    seeds = {f"seed {k}": np.linspace(0, 1, 50) ** (k + 1) for k in range(5)}
    plots.plot_timeline(tmp_path / "t.png", gt, seeds, title="x")
    plots.plot_timeline(
        tmp_path / "s.png", gt, {"score": seeds["seed 0"]}, "y", shade_color="tab:orange"
    )
    for fig, shade in zip(figures, ("tab:red", "tab:orange"), strict=True):
        ax = fig.axes[0]
        lines = [mcolors.to_hex(line.get_color()) for line in ax.lines]
        span = mcolors.to_hex(ax.patches[0].get_facecolor()[:3])
        assert span == mcolors.to_hex(shade) and span not in lines
        assert len(set(lines)) == len(lines)  # every seed its own colour
