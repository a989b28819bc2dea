"""metrics.json, multi-seed summaries and the rows of the tables that ``wsvad evaluate`` and
``wsvad compare`` print.

Figures are stored as fractions in [0, 1] (``None`` when undefined) and shown as percentages.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from wsvad import __version__
from wsvad.atomic import write_text_atomic
from wsvad.errors import WsvadError
from wsvad.runs import mean_std

SCHEMA = "wsvad.metrics/1"
METRICS_FILE = "metrics.json"
# (key in the metrics dict, column title): the figures every table shows, in this order.
HEADLINE = [
    ("auc", "AUC"),
    ("ap_sklearn", "AP (sklearn)"),
    ("pr_auc_trapezoid", "PR-AUC (trapezoid)"),
    ("far", "FAR"),
    ("auc_abnormal_only", "AUC (abnormal videos)"),
    ("mAA", "mAA"),
]


def write_json_atomic(path: Path, data: Any, indent: int | None = 1) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    separators = None if indent is not None else (",", ":")
    write_text_atomic(path, json.dumps(data, indent=indent, separators=separators, sort_keys=False))


def summarise_seeds(per_seed: dict[str, dict]) -> dict[str, dict]:
    """Mean and sample standard deviation (:func:`wsvad.runs.mean_std`) of every scalar figure."""
    keys = [k for k, _ in HEADLINE] + sorted(
        {k for m in per_seed.values() for k in m.get("per_class_auc", {})}
    )
    out = {}
    for key in keys:
        values = [m.get(key, m.get("per_class_auc", {}).get(key)) for m in per_seed.values()]
        summary = mean_std(values)
        if summary["n"]:
            out[key] = summary
    return out


def build_report(
    *,
    metrics: dict | None,
    per_seed: dict[str, dict] | None,
    protocol: dict,
    config: dict,
    config_hash: str,
    source: dict,
    seeds: list[int] | None,
    model_selection: Any,
    coverage: dict,
    plots: list[str],
) -> dict:
    """The content of metrics.json (one run, or a multi-seed run with ``per_seed``).

    ``config_hash`` identifies the evaluation settings that change the figures (paths left out), so
    two metrics.json files with the same hash were computed the same way.
    """
    report = {
        "schema": SCHEMA,
        "wsvad_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "protocol": protocol,
        "model_selection": model_selection,
        "selected_on_test": _selected_on_test(model_selection),
        "seed": seeds[0] if seeds and len(seeds) == 1 else seeds,
        "source": source,
        "coverage": coverage,
        "config": config,
        "config_hash": config_hash,
        "plots": plots,
    }
    if per_seed:
        report["seeds"] = per_seed
        report["summary"] = summarise_seeds(per_seed)
    else:
        report["metrics"] = metrics
    return report


def _selected_on_test(model_selection: Any) -> bool:
    """True for the train stage's ``test-best`` (or any selection naming the test set)."""
    return "test" in re.split(r"[^a-z]+", json.dumps(model_selection).lower())


def read_report(path: Path) -> dict:
    """metrics.json of a run directory, an eval directory or the file itself."""
    path = Path(path)
    candidates = [path] if path.is_file() else [path / "eval" / METRICS_FILE, path / METRICS_FILE]
    for candidate in candidates:
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise WsvadError(f"{candidate}: not valid JSON ({exc.msg})") from exc
            except UnicodeDecodeError as exc:  # a binary file
                raise WsvadError(f"{candidate}: not a text file ({exc.reason})") from exc
            schema = data.get("schema") if isinstance(data, dict) else None
            if schema != SCHEMA:
                raise WsvadError(f"{candidate}: not a wsvad metrics file (schema {schema!r})")
            data["_path"] = str(candidate)
            return data
    raise WsvadError(f"{path}: no metrics.json (run `wsvad evaluate --run {path}` first)")


def format_figure(report: dict, key: str) -> str:
    """``84.31`` for one run, ``84.31 ± 0.52`` across seeds, ``-`` when not reported."""
    if "summary" in report:
        entry = report["summary"].get(key)
        if entry is None:
            return "-"
        return f"{100 * entry['mean']:.2f} ± {100 * entry['std']:.2f}"
    value = (report.get("metrics") or {}).get(key)
    if value is None:
        value = (report.get("metrics") or {}).get("per_class_auc", {}).get(key)
    return "-" if value is None else f"{100 * value:.2f}"


def headline_rows(report: dict) -> list[tuple[str, str]]:
    """``(title, figure)`` rows for one report: the headline figures it has, then per-class AUCs."""
    rows = [(title, format_figure(report, key)) for key, title in HEADLINE]
    rows = [(title, value) for title, value in rows if value != "-" or title == "AUC"]
    return rows + [(f"AUC {name}", format_figure(report, name)) for name in _class_names(report)]


def _class_names(report: dict) -> list[str]:
    if "summary" in report:
        return [k for k in report["summary"] if k not in dict(HEADLINE)]
    return list((report.get("metrics") or {}).get("per_class_auc") or {})


def compare_table(reports: list[dict], names: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of ``wsvad compare``: one column per run, one row per figure."""
    header = ["", *names]
    class_names = list(dict.fromkeys(name for r in reports for name in _class_names(r)))
    rows = [[title, *(format_figure(r, key) for r in reports)] for key, title in HEADLINE]
    rows += [[f"AUC {c}", *(format_figure(r, c) for r in reports)] for c in class_names]
    rows.append(["protocol", *(r["protocol"].get("name", "wsvad") for r in reports)])
    rows.append(["alignment", *(r["protocol"].get("alignment", "?") for r in reports)])
    rows.append(["seeds", *(_seeds_text(r) for r in reports)])
    rows.append(["model selection", *(_selection_text(r) for r in reports)])
    rows.append(["videos", *(str(r.get("coverage", {}).get("matched", "?")) for r in reports)])
    return header, rows


def _seeds_text(report: dict) -> str:
    seed = report.get("seed")
    if isinstance(seed, list):
        return ",".join(str(s) for s in seed)
    return "-" if seed is None else str(seed)


def _selection_text(report: dict) -> str:
    text = str(report.get("model_selection") or "-")
    return f"{text} (TEST SET)" if report.get("selected_on_test") else text
