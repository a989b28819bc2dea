"""What the HTML report embeds: equal to metrics.json and per_video.csv, and made small by rules
that keep every peak (no browser needed; tests/evaluate/test_report_browser.py opens the page)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run as cli
from wsvad.evaluate import metrics as M
from wsvad.evaluate.html_report import page_data, plotly_js, write_html_report
from wsvad.evaluate.report import compare_table, read_report
from wsvad.evaluate.report_data import read_report_data, thin_curve, timeline_points


def _page(report_runs, names, out: Path) -> dict:
    reports = [read_report(report_runs[n]) for n in names]
    return page_data([(r, read_report_data(Path(r["_path"]))) for r in reports], out)


def _embedded(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="wsvad-data">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_timeline_keeps_exact_steps_and_every_peak():
    scores = np.repeat([0.1, 0.4, 0.2], [16, 16, 5])
    assert timeline_points(scores) == ([0, 16, 32, 37], [0.1, 0.4, 0.2, 0.2])
    # 100,000 frames of noise with one spike at frame 77,777: 2,000 bins of 50 frames.
    long = np.random.default_rng(0).uniform(0, 0.3, 100_000)
    long[77_777] = 0.95
    x, y = timeline_points(long)
    assert len(x) == 2001 and x[-1] == 100_000 and x[1] == 50
    peak = int(np.argmax(y))
    assert y[peak] == 0.95 and x[peak] <= 77_777 < x[peak + 1]
    # Four significant digits: tiny scores keep their shape.
    assert timeline_points(np.array([1.23456e-5, 2.5e-5]))[1] == [1.235e-05, 2.5e-05, 2.5e-05]


def test_thinned_roc_stays_within_a_thousandth_of_the_exact_curve():
    rng = np.random.default_rng(1)
    labels = (rng.uniform(size=50_000) < 0.2).astype(np.uint8)
    scores = rng.normal(size=labels.size) + labels
    fpr, tpr = M.roc_points(labels, scores)
    x, y = thin_curve(fpr, tpr)
    assert len(fpr) > 10_000 and len(x) <= 2002
    assert (x[0], y[0], x[-1], y[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert abs(np.trapezoid(y, x) - M.frame_roc_auc(labels, scores)) < 1e-3
    # Every exact point lies within 0.001 (+ rounding to 5 decimals) of a point that is drawn.
    kept = np.stack([x, y], axis=1)
    for chunk in np.array_split(np.stack([fpr, tpr], axis=1), 20):
        gaps = np.abs(chunk[:, None, :] - kept[None, :, :]).max(axis=2).min(axis=1)
        assert gaps.max() < 1e-3 + 1e-5


def test_evaluate_writes_the_report_and_its_data_by_default(report_runs):
    eval_dir = report_runs["run_a"] / "eval"
    html = (eval_dir / "report.html").read_text(encoding="utf-8")
    assert "plotly.js v" in html and "<script src" not in html and "<link" not in html
    page = _embedded(html)
    assert [run["name"] for run in page["runs"]] == ["run_a"]
    assert [v["id"] for v in page["videos"]] == ["a", "b", "c"]


def test_no_report_skips_the_html_but_keeps_its_data(report_runs, tmp_path):
    out = tmp_path / "ev"
    assert (
        cli(
            ["evaluate", "--run", str(report_runs["run_a"]), "--out", str(out)]
            + ["--no-plots", "--no-report"]
        )
        == 0
    )
    assert not (out / "report.html").exists() and (out / "report_data.json").is_file()


def test_legends_and_tables_carry_the_figures_of_metrics_json(report_runs, tmp_path):
    page = _page(report_runs, ["run_a", "run_b"], tmp_path / "report.html")
    a = json.loads((report_runs["run_a"] / "eval" / "metrics.json").read_text())["metrics"]
    b = json.loads((report_runs["run_b"] / "eval" / "metrics.json").read_text())["seeds"]
    run_a, run_b = page["runs"]
    assert run_a["seeds"][0]["roc_legend"] == f"run_a · AUC {100 * a['auc']:.2f}"
    assert run_a["seeds"][0]["pr_legend"] == (
        f"run_a · AP (sklearn) {100 * a['ap_sklearn']:.2f}"
        f" · PR-AUC (trapezoid) {100 * a['pr_auc_trapezoid']:.2f}"
    )
    assert [s["roc_legend"] for s in run_b["seeds"]] == [
        f"run_b seed-{k} · AUC {100 * b[f'seed-{k}']['auc']:.2f}" for k in (0, 1)
    ]
    assert run_a["selected_on_test"] is False and run_b["selected_on_test"] is True
    reports = [read_report(report_runs[n]) for n in ("run_a", "run_b")]
    header, rows = compare_table(reports, ["run_a", "run_b"])
    assert page["figures"] == {"header": header, "rows": rows}
    assert ["store fingerprint", "storehash0123456"] in run_a["provenance"]
    assert ["backbone", "test"] in run_a["provenance"]


def test_video_rows_equal_per_video_csv(report_runs, tmp_path):
    page = _page(report_runs, ["run_a", "run_b"], tmp_path / "report.html")
    with open(report_runs["run_a"] / "eval" / "per_video.csv", newline="") as fh:
        csv_rows = {row["video_id"]: row for row in csv.DictReader(fh)}
    for video in page["videos"]:
        row, figures = csv_rows[video["id"]], video["runs"][0]
        assert figures["max_score"] == pytest.approx(float(row["max_score"]))
        assert figures["auc"] == (pytest.approx(float(row["auc"])) if row["auc"] else None)
    a = next(v for v in page["videos"] if v["id"] == "a")
    assert a["intervals"] == [[16, 48]] and a["fps"] == 25.0 and a["n_frames"] == 48
    timeline = page["runs"][0]["seeds"][0]["timelines"]["a"]
    assert timeline == {"x": [0, 16, 32, 48], "y": [0.1, 0.2, 0.9, 0.9]}


def test_false_alarms_per_video_add_up_to_the_far(report_runs, tmp_path):
    out = tmp_path / "ev"
    args = ["evaluate", "--run", str(report_runs["run_a"]), "--out", str(out), "--no-plots"]
    assert cli(args + ["--threshold", "0.25", "--no-report"]) == 0
    data = read_report_data(out / "metrics.json")
    far = json.loads((out / "metrics.json").read_text())["metrics"]["far"]
    rows = data["seeds"][""]["videos"]
    # b (the only normal video) scores .2 then .3 over 16 frames each: half its frames >= .25.
    assert rows["b"]["false_alarms"] == pytest.approx(0.5) == pytest.approx(far)
    # a's normal frames [0, 16) score .1 and c's [16, 32) score .1: no false alarm.
    assert rows["a"]["false_alarms"] == 0.0 and rows["c"]["false_alarms"] == 0.0


def test_players_get_a_relative_path_or_the_reason(report_runs, tmp_path):
    out = tmp_path / "deep" / "report.html"
    page = _page(report_runs, ["run_a", "run_tiny"], out)
    players = {v["id"]: v["video"] for v in page["videos"]}
    relative = Path("..") / ".." / report_runs["data"].relative_to(tmp_path.parent) / "a.mp4"
    assert Path(players["a"]["src"]) == relative
    assert players["b"] == {
        "src": None,
        "note": f"video file not found: {report_runs['data'] / 'b.mp4'}",
    }
    alone = _page(report_runs, ["run_tiny"], out)["videos"][0]["video"]
    assert alone["src"] is None and "no video file is recorded" in alone["note"]


def test_report_command_and_compare_write_one_page_for_several_runs(report_runs, tmp_path, capsys):
    runs = [str(report_runs["run_a"]), str(report_runs["run_b"] / "eval")]
    out = tmp_path / "two.html"
    assert cli(["report", *runs, "--out", str(out)]) == 0
    assert f"wrote {out} (2 runs" in capsys.readouterr().out
    page = _embedded(out.read_text(encoding="utf-8"))
    assert [r["name"] for r in page["runs"]] == ["run_a", "run_b"]
    assert page["title"] == "wsvad report: run_a, run_b"
    assert cli(["compare", *runs, "--report", str(tmp_path / "cmp.html")]) == 0
    assert _embedded((tmp_path / "cmp.html").read_text(encoding="utf-8"))["runs"] == page["runs"]


def test_report_refuses_a_folder_and_runs_without_report_data(report_runs, tmp_path, capsys):
    assert cli(["report", str(report_runs["run_a"]), "--out", str(tmp_path)]) == 1
    assert f"{tmp_path}: is a folder; give the report's file name" in capsys.readouterr().err
    old = tmp_path / "old"
    old.mkdir()
    metrics = report_runs["run_a"] / "eval" / "metrics.json"
    (old / "metrics.json").write_text(metrics.read_text())
    assert cli(["report", str(old), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert f"{old}: no report_data.json (evaluated by an older wsvad?)" in err


def test_plotly_is_inlined_from_the_installed_wheel():
    import plotly

    js = plotly_js()
    assert js.startswith("/**\n* plotly.js v") and len(js) > 1_000_000
    assert (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text() == js


def test_a_report_of_one_run_names_it(report_runs, tmp_path):
    out = write_html_report([report_runs["run_tiny"]], tmp_path / "one.html")
    page = _embedded(out.read_text(encoding="utf-8"))
    assert page["title"] == "wsvad report: run_tiny" and len(page["runs"][0]["seeds"]) == 1


def test_a_run_with_one_seed_folder_takes_its_figures_from_metrics(report_runs, tmp_path):
    from wsvad.evaluate.html_report import _run_entry

    run = tmp_path / "one-seed"
    shutil.copytree(report_runs["run_b"], run)
    shutil.rmtree(run / "seed-1")
    shutil.rmtree(run / "eval")
    assert cli(["evaluate", "--run", str(run), "--no-plots", "--no-report"]) == 0
    report = read_report(run)
    assert "seeds" not in report  # one seed folder: figures under "metrics"
    entry = _run_entry(report, read_report_data(Path(report["_path"])), "one", "#000")
    assert (
        entry["seeds"][0]["roc_legend"] == f"one seed-0 · AUC {100 * report['metrics']['auc']:.2f}"
    )
