"""``wsvad evaluate --run`` (single and multi-seed), the plots it writes, and ``wsvad compare``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run as cli
from wsvad.pipeline.store import FeatureStore

# Store videos: a 48 frames anomalous [16, 48) (Fighting); b 32 normal; c 32 anomalous [0, 16)
# (Arson); t a training video the evaluator must ignore.
VIDEOS = {
    "a": dict(n_frames=48, split="test", label=1, classes=["Fighting"], intervals=[[16, 48]]),
    "b": dict(n_frames=32, split="test", label=0, classes=[], intervals=[]),
    "c": dict(n_frames=32, split="test", label=1, classes=["Arson"], intervals=[[0, 16]]),
    "t": dict(n_frames=32, split="train", label=1, classes=["Arson"], intervals=None),
}
GOOD = {"a": [0.1, 0.2, 0.9], "b": [0.2, 0.3], "c": [0.8, 0.1]}
AUC_GOOD = (16 * 40 + 32 * 64) / (48 * 64)  # worked out in test_eval_standalone.py
# Seed 1: a's positives all .9, c's .8, every negative below: AUC 1.
PERFECT = {"a": [0.1, 0.9, 0.9], "b": [0.2, 0.3], "c": [0.8, 0.1]}


@pytest.fixture
def store(tmp_path):
    fs = FeatureStore.create(
        tmp_path / "store",
        {
            "feature_shape": [4],
            "dtype": "float32",
            "crops": 1,
            "backbone": "test",
            "snippet_len": 16,
            "stride": 16,
        },
    )
    for vid, attrs in VIDEOS.items():
        fs.write_video(vid, np.zeros((attrs["n_frames"] // 16, 1, 4), np.float32), attrs)
    return tmp_path / "store"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")


def _scores(path: Path, scores: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: np.asarray(v, np.float32) for k, v in scores.items()})


def make_run(root: Path, store: Path, seeds: dict[int, dict], selection="last") -> Path:
    """A run directory laid out as `wsvad train` writes it (multi-seed: run.json lists
    seed-<k>/)."""
    root.mkdir(parents=True)
    info = {
        "kind": "single",
        "store": str(store),
        "dataset": "folder",
        "root": None,
        "detector": "mil",
        "snippet_len": 16,
        "stride": 16,
        "class_names": ["Normal", "Arson", "Fighting"],
        "model_selection": selection,
    }
    (root / "config.yaml").write_text("detector: {name: mil}\nseed: 0\n")
    if len(seeds) == 1:
        ((seed, scores),) = seeds.items()
        _scores(root / "scores.npz", scores)
        (root / "run.json").write_text(json.dumps(info | {"seed": seed}))
        return root
    for seed, scores in seeds.items():
        _scores(root / f"seed-{seed}" / "scores.npz", scores)
        (root / f"seed-{seed}" / "run.json").write_text(json.dumps(info | {"seed": seed}))
    top = {
        "kind": "multi-seed",
        "seeds": sorted(seeds),
        "runs": [{"seed": k, "dir": f"seed-{k}"} for k in sorted(seeds)],
        "model_selection": selection,
    }
    (root / "run.json").write_text(json.dumps(top))
    return root


def _is_png(path: Path, min_bytes: int = 8000) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > min_bytes


def test_run_evaluation_writes_metrics_and_plots(tmp_path, store, capsys):
    run = make_run(tmp_path / "run", store, {0: GOOD})
    assert cli(["evaluate", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    report = json.loads((run / "eval" / "metrics.json").read_text())
    m = report["metrics"]
    assert m["auc"] == pytest.approx(AUC_GOOD)
    assert m["n_videos"] == 3  # the training video t is not evaluated
    # Fighting: a + b. Positives 16 x .2, 16 x .9; negatives a 16 x .1, b 16 x .2 + 16 x .3:
    # .2 beats 16, ties 16 -> 24 each; .9 beats all 48. (16*24 + 16*48) / (32*48).
    assert m["per_class_auc"]["Fighting"] == pytest.approx((16 * 24 + 16 * 48) / (32 * 48))
    # Arson: c + b. Positive .8 beats all 48 negatives.
    assert m["per_class_auc"]["Arson"] == pytest.approx(1.0)
    assert m["far"] == pytest.approx(0.0)
    assert (
        report["seed"] == 0
        and report["model_selection"] == "last"
        and report["selected_on_test"] is False
    )
    assert len(report["source"]["run_config_hash"]) == 16 and len(report["config_hash"]) == 16
    assert _is_png(run / "eval" / "roc.png") and _is_png(run / "eval" / "pr.png")
    timelines = sorted(p.name for p in (run / "eval" / "timelines").iterdir())
    assert timelines == ["best-a.png", "best-b.png", "best-c.png"]  # 3 per group, only 3 videos
    assert all(_is_png(p, 5000) for p in (run / "eval" / "timelines").iterdir())
    assert (
        f"{100 * AUC_GOOD:.2f}" in out and "AUC Fighting" in out and "model selection: last" in out
    )
    rows = (run / "eval" / "per_video.csv").read_text().splitlines()
    assert rows[0].startswith("seed,video_id,label") and len(rows) == 4


def test_timelines_pick_best_and_worst(tmp_path, store):
    run = make_run(tmp_path / "run", store, {0: GOOD})
    assert cli(["evaluate", "--run", str(run), "--set", "timelines=1"]) == 0
    names = sorted(p.name for p in (run / "eval" / "timelines").iterdir())
    # Mean |score - label|: a (16*.1 + 16*.8 + 16*.1)/48 = .333, b .25, c (16*.2 + 16*.1)/32 = .15.
    assert names == ["best-c.png", "sample-b.png", "worst-a.png"]


def test_timeline_titles_print_the_metric_that_ranked_them(tmp_path, store, monkeypatch):
    from wsvad.evaluate import plots

    titles = {}
    drawn = plots.plot_timeline

    def record(path, *args, title, **kwargs):
        titles[path.name] = title
        return drawn(path, *args, title=title, **kwargs)

    monkeypatch.setattr(plots, "plot_timeline", record)
    run = make_run(tmp_path / "run", store, {0: GOOD})
    assert cli(["evaluate", "--run", str(run), "--set", "timelines=1"]) == 0
    # ranked by mean |score - label| (a .333, b .25, c .15): the titles say that figure
    assert titles["best-c.png"].startswith("c (best, mean |score - label| 0.150")
    assert titles["worst-a.png"].startswith("a (worst, mean |score - label| 0.333")


def test_test_set_selection_is_flagged(tmp_path, store, capsys):
    run = make_run(tmp_path / "run", store, {0: GOOD}, selection="test-best")
    cli(["evaluate", "--run", str(run), "--no-plots"])
    assert "SELECTED ON THE TEST SET" in capsys.readouterr().out
    assert json.loads((run / "eval" / "metrics.json").read_text())["selected_on_test"] is True


def test_multi_seed_reports_mean_and_std(tmp_path, store, capsys):
    run = make_run(tmp_path / "run", store, {0: GOOD, 1: PERFECT})
    assert cli(["evaluate", "--run", str(run), "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["seed"] == [0, 1]
    assert report["seeds"]["seed-1"]["auc"] == pytest.approx(1.0)
    summary = report["summary"]["auc"]
    assert summary["mean"] == pytest.approx((AUC_GOOD + 1) / 2)
    assert summary["std"] == pytest.approx(np.std([AUC_GOOD, 1.0], ddof=1))
    assert f"{100 * summary['mean']:.2f} ± {100 * summary['std']:.2f}" in out
    assert _is_png(tmp_path / "ev" / "roc.png")


def test_run_without_scores_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}")
    assert cli(["evaluate", "--run", str(tmp_path / "run")]) == 1
    assert (
        "no scores.npz (and no seed-<k>/scores.npz); did training finish?"
        in capsys.readouterr().err
    )
    assert cli(["evaluate", "--run", str(tmp_path / "nothing")]) == 1
    assert "not a run directory (no run.json" in capsys.readouterr().err


def test_compare_prints_runs_side_by_side(tmp_path, store, capsys):
    a = make_run(tmp_path / "run_a", store, {0: GOOD})
    b = make_run(tmp_path / "run_b", store, {0: GOOD, 1: PERFECT})
    cli(["evaluate", "--run", str(a), "--no-plots"])
    cli(["evaluate", "--run", str(b), "--no-plots"])
    capsys.readouterr()
    assert cli(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    auc_row = next(
        line for line in out.splitlines() if "│ AUC " in line or line.strip().startswith("AUC ")
    )
    assert f"{100 * AUC_GOOD:.2f}" in auc_row and f"{100 * (AUC_GOOD + 1) / 2:.2f} ±" in auc_row
    assert "run_a" in out and "run_b" in out and "AUC Arson" in out


def test_compare_warns_about_different_protocols(tmp_path, store, capsys):
    a = make_run(tmp_path / "run_a", store, {0: GOOD})
    cli(["evaluate", "--run", str(a), "--no-plots"])
    cli(
        [
            "evaluate",
            "--run",
            str(a),
            "--no-plots",
            "--alignment",
            "rtfm",
            "--out",
            str(tmp_path / "rtfm"),
        ]
    )
    cli(["evaluate", "--run", str(a), "--no-plots", "--out", str(tmp_path / "again")])
    capsys.readouterr()
    assert cli(["compare", str(a), str(tmp_path / "rtfm")]) == 0
    assert "different protocols" in capsys.readouterr().err
    hashes = [
        json.loads((d / "metrics.json").read_text())["config_hash"]
        for d in (a / "eval", tmp_path / "again", tmp_path / "rtfm")
    ]
    assert (
        hashes[0] == hashes[1] != hashes[2]
    )  # the output folder does not change the hash, the alignment does


def test_compare_missing_metrics_names_the_run(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    assert cli(["compare", str(tmp_path / "r")]) == 1
    assert (
        f"{tmp_path / 'r'}: no metrics.json (run `wsvad evaluate --run" in capsys.readouterr().err
    )


def test_mean_average_accuracy_from_class_scores(tmp_path, store):
    run = make_run(tmp_path / "run", store, {0: GOOD})
    # a (Fighting) -> Fighting, b (Normal) -> Normal, c (Arson) -> Fighting: Normal 1, Arson 0,
    # Fighting 1.
    np.savez(
        run / "class_scores.npz",
        a=np.array([0.1, 0.2, 0.7]),
        b=np.array([0.9, 0.05, 0.05]),
        c=np.array([0.1, 0.1, 0.8]),
    )
    assert cli(["evaluate", "--run", str(run), "--no-plots"]) == 0
    m = json.loads((run / "eval" / "metrics.json").read_text())["metrics"]
    assert m["mAA"] == pytest.approx(2 / 3)
    assert m["per_class_accuracy"] == {"Normal": 1.0, "Arson": 0.0, "Fighting": 1.0}


def test_mean_average_accuracy_from_a_classification_head(tmp_path, store):
    import torch

    from wsvad.detectors import build_detector
    from wsvad.detectors.checkpoint import save_detector
    from wsvad.scoring.recipe import ScoringRecipe

    torch.manual_seed(0)
    run = make_run(tmp_path / "run", store, {0: GOOD})
    params = {
        "segments": 2,
        "lstm_hidden": 8,
        "att1_latent": 4,
        "det_hidden": 8,
        "det_latent": 4,
        "att2_latent": 4,
        "cls_hidden": 8,
    }
    detector = build_detector("joint", (4,), params, n_classes=3).eval()
    # Scored as a run with the default recipe: every crop apart, every raw snippet.
    recipe = ScoringRecipe(
        crop_mode="separate", score_on="snippets", bag_rule="rtfm", bag_pool="mean", bag_count=32
    )
    save_detector(
        run / "model",
        detector,
        {"class_names": ["Normal", "Arson", "Fighting"], "scoring": recipe.to_json()},
    )
    assert cli(["evaluate", "--run", str(run), "--no-plots"]) == 0
    m = json.loads((run / "eval" / "metrics.json").read_text())["metrics"]
    # The store's features are all zeros, so the head predicts one class k for every video:
    # accuracy 1 for class k and 0 for the others present (Normal, Arson, Fighting) -> mAA 1/3.
    with torch.no_grad():
        k = int(detector.classify_video(torch.zeros(3, 4)).argmax())
    assert m["mAA"] == pytest.approx(1 / 3)
    assert m["per_class_accuracy"][["Normal", "Arson", "Fighting"][k]] == 1.0


def test_store_videos_without_ground_truth_are_listed(tmp_path, store, capsys):
    FeatureStore.open(store).write_video(
        "u",
        np.zeros((2, 1, 4), np.float32),
        dict(n_frames=32, split="test", label=-1, classes=[], intervals=None),
    )
    run = make_run(tmp_path / "run", store, {0: GOOD | {"u": [0.5, 0.5]}})
    assert cli(["evaluate", "--run", str(run), "--no-plots"]) == 3
    err = capsys.readouterr().err
    assert "no ground truth" in err and "the store has no label or frame annotation for it" in err
    report = json.loads((run / "eval" / "metrics.json").read_text())
    assert report["metrics"]["auc"] == pytest.approx(AUC_GOOD)
    assert [(p["video_id"], p["kind"]) for p in report["coverage"]["problems"]] == [
        ("u", "no ground truth")
    ]
