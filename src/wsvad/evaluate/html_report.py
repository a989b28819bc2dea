"""``wsvad report``: one self-contained, interactive HTML file for one or more evaluated runs.

The page is built from each evaluation's metrics.json (every figure shown, as ``wsvad compare``
prints it) and report_data.json (curves, per-video rows and timelines, written by ``wsvad
evaluate``; see :mod:`wsvad.evaluate.report_data`). Nothing is fetched when it opens: the CSS, the
page's script and plotly.js (read from the installed ``plotly`` Python package) are inlined, and
the data is embedded as JSON. A test video plays in the page when its file is reachable by a
relative path from the report's folder; otherwise the page says why it cannot.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from wsvad import __version__
from wsvad.atomic import write_text_atomic
from wsvad.errors import WsvadError
from wsvad.evaluate.report import HEADLINE, compare_table, read_report
from wsvad.evaluate.report_data import read_report_data

REPORT_FILE = "report.html"
# One colour per run (colour-blind-safe Okabe-Ito order, darkest first).
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
_TITLES = dict(HEADLINE)


def write_html_report(paths: list[Path], out: Path, title: str | None = None) -> Path:
    """Write the report of the evaluations at ``paths`` (run dirs, eval dirs or metrics.json)."""
    out = Path(out)
    if out.is_dir():
        raise WsvadError(f"{out}: is a folder; give the report's file name, e.g. {out}/report.html")
    loaded = [(read_report(p), p) for p in paths]
    page = page_data([(r, read_report_data(Path(r["_path"]))) for r, _ in loaded], out)
    page["title"] = title or "wsvad report: " + ", ".join(run["name"] for run in page["runs"])
    html = render_html(page)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, html)
    return out


def page_data(runs: list[tuple[dict, dict]], out: Path) -> dict:
    """Everything the page shows, as JSON: ``runs`` are (metrics.json, report_data.json) pairs."""
    reports = [report for report, _ in runs]
    names = run_names(reports)
    header, rows = compare_table(reports, names)
    protocols = {r["protocol"].get("description") for r in reports}
    return {
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "wsvad_version": __version__,
        "runs": [
            _run_entry(report, data, name, COLOURS[i % len(COLOURS)])
            for i, ((report, data), name) in enumerate(zip(runs, names, strict=True))
        ],
        "figures": {"header": header, "rows": rows},
        "warnings": (
            ["the runs were evaluated under different protocols: their figures are not comparable"]
            if len(protocols) > 1
            else []
        ),
        "videos": video_table(runs, Path(out).parent),
    }


def run_names(reports: list[dict]) -> list[str]:
    """The run folder's name (the eval folder's for scores evaluated on their own), made unique."""
    names: list[str] = []
    for report in reports:
        run = (report.get("source") or {}).get("run")
        base = Path(run).name if run else Path(report["_path"]).parent.name
        name, k = base, 2
        while name in names:
            name, k = f"{base} ({k})", k + 1
        names.append(name)
    return names


def _seed_figures(report: dict, label: str) -> dict:
    # A run with one seed-<k>/ folder has its figures under "metrics", like a single run.
    return (report.get("seeds") or {}).get(label) or report["metrics"]


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _run_entry(report: dict, data: dict, name: str, colour: str) -> dict:
    """One run: legend texts from metrics.json, curves and timelines from report_data.json."""
    seeds = []
    for label, seed in data["seeds"].items():
        figures = _seed_figures(report, label)
        full = f"{name} {label}" if label else name
        ap = (
            f"{_TITLES['ap_sklearn']} {_percent(figures.get('ap_sklearn'))}"
            f" · {_TITLES['pr_auc_trapezoid']} {_percent(figures.get('pr_auc_trapezoid'))}"
        )
        seeds.append(
            {
                "label": label,
                "name": full,
                "roc_legend": f"{full} · AUC {_percent(figures.get('auc'))}",
                "pr_legend": f"{full} · {ap}",
                "curves": seed["curves"],
                "timelines": {vid: row["timeline"] for vid, row in seed["videos"].items()},
            }
        )
    source = report.get("source") or {}
    return {
        "name": name,
        "colour": colour,
        "metrics_path": report["_path"],
        "threshold": data["threshold"],
        "protocol": report["protocol"].get("description"),
        "selection": str(report.get("model_selection") or "-"),
        "selected_on_test": bool(report.get("selected_on_test")),
        "provenance": provenance(report),
        "warnings": [w for w in (source.get("training_collapse"), _coverage(report)) if w],
        "seeds": seeds,
    }


def _coverage(report: dict) -> str | None:
    coverage = report.get("coverage") or {}
    if not coverage.get("problems"):
        return None
    return (
        f"evaluated {coverage.get('matched')} of {coverage.get('test_videos')} test videos "
        f"({len(coverage['problems'])} problems listed in metrics.json): not the full protocol"
    )


def provenance(report: dict) -> list[list[str]]:
    """(what, value) rows: where the scores, features and settings came from."""
    source = report.get("source") or {}
    seed = report.get("seed")
    rows = [
        ("run", source.get("run") or ", ".join((source.get("scores") or {}).values())),
        ("detector", source.get("detector")),
        ("seeds", ", ".join(map(str, seed)) if isinstance(seed, list) else seed),
        ("dataset", f"{source.get('dataset')} at {source.get('root')}"),
        ("feature store", source.get("store")),
        ("store fingerprint", source.get("store_fingerprint")),
        ("backbone", source.get("backbone")),
        ("training config hash", source.get("run_config_hash")),
        ("evaluation config hash", report.get("config_hash")),
        ("evaluated", f"{report.get('created')} by wsvad {report.get('wsvad_version')}"),
        ("metrics", report["_path"]),
    ]
    return [[what, "-" if value is None else str(value)] for what, value in rows]


def video_table(runs: list[tuple[dict, dict]], report_dir: Path) -> list[dict]:
    """One row per test video of any run: its facts, its player source, each run's figures.

    A run's figures are those of its first seed (its other seeds are drawn in the timeline).
    """
    rows: dict[str, dict] = {}
    for _, data in runs:
        for vid, facts in data["videos"].items():
            if vid not in rows:
                rows[vid] = {"id": vid, **facts, "video": _player(facts["path"], report_dir)}
                del rows[vid]["path"]
    for row in rows.values():
        row["runs"] = []
        for _, data in runs:
            figures = next(iter(data["seeds"].values()))["videos"].get(row["id"])
            row["runs"].append(
                None
                if figures is None
                else {k: figures[k] for k in ("auc", "max_score", "mean_score", "false_alarms")}
            )
    return [rows[vid] for vid in sorted(rows)]


def _player(path: str | None, report_dir: Path) -> dict:
    """``{"src": URL relative to the report}`` for a file that exists, else ``{"note": why}``."""
    if path is None:
        return {
            "src": None,
            "note": "no video file is recorded for this video (imported features?)",
        }
    if not Path(path).is_file():
        return {"src": None, "note": f"video file not found: {path}"}
    relative = os.path.relpath(Path(path).resolve(), Path(report_dir).resolve())
    return {"src": quote(Path(relative).as_posix()), "note": relative}


# ---------------------------------------------------------------------------- the page
def render_html(page: dict) -> str:
    """The template with CSS, plotly.js, the page script and the data inlined."""
    assets = resources.files("wsvad.evaluate") / "report_assets"
    template = (assets / "report.html").read_text(encoding="utf-8")
    # "<" escaped inside the JSON so no string in the data can close the <script> element.
    data = json.dumps(page, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    parts = {
        "title": _escape(page["title"]),
        "css": (assets / "report.css").read_text(encoding="utf-8"),
        "plotly": _script(plotly_js()),
        "script": _script((assets / "report.js").read_text(encoding="utf-8")),
        "data": data,
    }
    for key, value in parts.items():
        template = template.replace(f"<!--wsvad:{key}-->", value)
    return template


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _script(js: str) -> str:
    # A literal "</script" would end the inline element early; "<\/script" means the same in JS.
    return js.replace("</script", "<\\/script")


def plotly_js() -> str:
    """plotly.min.js as shipped in the ``plotly`` wheel (plotly/package_data/plotly.min.js)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise WsvadError("the HTML report needs the plotly package: pip install plotly")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise WsvadError(f"{path}: missing from the installed plotly package; reinstall plotly")
    return path.read_text(encoding="utf-8")
