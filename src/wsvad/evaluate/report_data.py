"""What the HTML report shows of one evaluation, written by ``wsvad evaluate`` as report_data.json.

``wsvad evaluate`` has every video's aligned frame scores and labels in memory; this module keeps,
next to metrics.json, what a report needs of them, made small enough to embed in a web page:

* curves: the frame-level ROC and PR points of :mod:`wsvad.evaluate.metrics` (the same functions
  as roc.png/pr.png), thinned by :func:`thin_curve` (a point is kept when it enters a new cell of
  a 0.001 grid, so every exact point lies within 0.001 of a drawn one);
* per video: the row of :func:`~wsvad.evaluate.protocol.per_video_table` plus its false alarms
  (share of its normal frames scored >= the protocol's threshold), its ground-truth runs, and its
  score timeline by :func:`timeline_points` (exact runs of equal scores; max-pooled to at most
  2,000 bins for longer videos, so a peak is never lost);
* where the video file is (dataset root + the store's ``source``) and its frame rate.

Figures (AUC, AP, ...) are never recomputed here: the report reads them from metrics.json.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from wsvad.errors import WsvadError
from wsvad.evaluate import metrics as M
from wsvad.evaluate.plots import gt_runs
from wsvad.evaluate.protocol import Pooled, per_video_table
from wsvad.evaluate.report import write_json_atomic

log = logging.getLogger(__name__)
SCHEMA = "wsvad.report-data/1"
REPORT_DATA_FILE = "report_data.json"
TIMELINE_POINTS = 2000  # bins of a long video's timeline
CURVE_STEP = 1e-3  # thin_curve's spacing, as a share of the [0, 1] axes


def timeline_points(scores: np.ndarray, max_points: int = TIMELINE_POINTS) -> tuple[list, list]:
    """A frame-score timeline as the starts of its steps ``x`` (frames) and their values ``y``.

    Drawn as a step line ("hv"), with a last point at ``len(scores)`` closing the last step.
    Runs of equal scores (a snippet score spread over its frames) make exact steps; a video with
    more than ``max_points`` runs is cut into ``max_points`` equal bins of whole frames and each
    bin shows its maximum, so every peak stays visible at its place (within one bin).

    >>> timeline_points(np.array([.1, .1, .5, .5, .2]))
    ([0, 2, 4, 5], [0.1, 0.5, 0.2, 0.2])
    >>> timeline_points(np.array([.1, .9, .2, .3, .2]), max_points=2)
    ([0, 3, 5], [0.9, 0.3, 0.3])
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return [], []
    starts = np.concatenate(([0], np.flatnonzero(scores[1:] != scores[:-1]) + 1))
    if len(starts) > max_points:
        width = math.ceil(scores.size / max_points)
        starts = np.arange(0, scores.size, width)
        values = np.maximum.reduceat(scores, starts)
    else:
        values = scores[starts]
    x = [*starts.tolist(), int(scores.size)]
    y = _significant(np.append(values, values[-1]))
    return x, y


def _significant(values: np.ndarray, digits: int = 4) -> list[float]:
    """Values rounded to ``digits`` significant digits (enough for a plot; tiny scores keep their
    shape), as the shortest floats JSON can write: ``round(v * 10^k) / 10^k`` is the double
    nearest the decimal, so it prints as that decimal.

    >>> _significant(np.array([0.123456, 1.23456e-5, 0.0, 12345.6]))
    [0.1235, 1.235e-05, 0.0, 12350.0]
    """
    v = np.asarray(values, dtype=np.float64)
    magnitude = np.floor(np.log10(np.where(v == 0, 1.0, np.abs(v)))).astype(np.int64)
    shift = digits - 1 - magnitude  # v * 10^shift has `digits` digits before the point
    out = np.empty_like(v)
    up = shift >= 0
    scale = 10.0 ** shift[up]
    out[up] = np.round(v[up] * scale) / scale
    scale = 10.0 ** -shift[~up]
    out[~up] = np.round(v[~up] / scale) * scale
    return out.tolist()


def thin_curve(
    x: np.ndarray, y: np.ndarray, step: float = CURVE_STEP, max_points: int = 5000
) -> tuple[list, list]:
    """The points of a curve on [0, 1]^2 that enter a new cell of a ``step`` grid, in order.

    Every dropped point shares its cell with the point before it, hence with the last kept one:
    it lies within ``step`` (max-norm) of a drawn point. The first and last points are always
    kept. A monotone curve (ROC) keeps at most ``2 / step`` points; a curve that zig-zags
    (precision at low recall) doubles ``step`` until it keeps at most ``max_points``.

    >>> thin_curve(np.array([0, .0001, .5, .55, 1]), np.array([0, .0002, .5, .52, 1]), step=.1)
    ([0.0, 0.5, 1.0], [0.0, 0.5, 1.0])
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    cells = np.floor(np.stack([x, y], axis=1) / step)
    entered = np.flatnonzero(np.any(cells[1:] != cells[:-1], axis=1)) + 1
    keep = np.unique(np.concatenate(([0], entered, [x.size - 1]))) if x.size else entered
    if keep.size > max_points:
        return thin_curve(x, y, 2 * step, max_points)
    return np.round(x[keep], 5).tolist(), np.round(y[keep], 5).tolist()


def curves(pooled: Pooled) -> dict | None:
    """Thinned ROC and PR points of the pooled frames; None when one class is missing."""
    runs = M.compress_runs(pooled.gt, pooled.scores)
    if len(np.unique(runs.labels)) < 2:
        return None
    fpr, tpr = thin_curve(*M.roc_points(runs))
    recall, precision = thin_curve(*M.pr_points(runs))
    return {
        "roc": {"fpr": fpr, "tpr": tpr},
        # sklearn's order (recall falling): drawn as steps "hv", as the AP sums them.
        "pr": {"recall": recall, "precision": precision},
        "anomalous_share": float(pooled.gt.mean()),
    }


def video_rows(pooled: Pooled, threshold: float, table: list[dict] | None = None) -> dict:
    """Per video: per_video_table's figures (``table`` when already made), false alarms and the
    score timeline."""
    rows = {}
    table = per_video_table(pooled) if table is None else table
    for row, video in zip(table, pooled.videos, strict=True):
        normal_frames = video.scores[video.gt == 0]
        false_alarms = M.false_alarm_rate(normal_frames, threshold)
        x, y = timeline_points(video.scores)
        rows[video.video_id] = {
            "auc": row["auc"],
            "max_score": row["max_score"],
            "mean_score": row["mean_score"],
            "false_alarms": None if math.isnan(false_alarms) else false_alarms,
            "timeline": {"x": x, "y": y},
        }
    return rows


def video_truths(pooled: Pooled) -> dict[str, dict]:
    """Per video: label, classes, frame count and ground-truth runs under the protocol."""
    return {
        v.video_id: {
            "label": v.label,
            "classes": list(v.classes),
            "n_frames": len(v.scores),
            "intervals": [list(run) for run in gt_runs(v.gt)],
        }
        for v in pooled.videos
    }


def build_report_data(
    pooled_by_seed: dict[str, Pooled],
    threshold: float,
    files: dict[str, dict],
    tables: dict[str, list[dict]] | None = None,
) -> dict:
    """report_data.json's content. ``files``: video id -> {"path", "fps"} (:func:`video_files`);
    ``tables``: per_video_table's rows per seed, when the caller has them."""
    tables = tables or {}
    first = next(iter(pooled_by_seed.values()))
    videos = video_truths(first)
    for vid, entry in videos.items():
        entry |= files.get(vid) or {"path": None, "fps": None}
    return {
        "schema": SCHEMA,
        "threshold": threshold,
        "rules": {
            "timeline": f"exact steps, or the maximum of {TIMELINE_POINTS} equal bins",
            "curves": f"thinned to points {CURVE_STEP:g} apart",
        },
        "videos": videos,
        "seeds": {
            label: {
                "curves": curves(pooled),
                "videos": video_rows(pooled, threshold, tables.get(label)),
            }
            for label, pooled in pooled_by_seed.items()
        },
    }


def write_report_data(
    out_dir: Path,
    pooled_by_seed: dict[str, Pooled],
    threshold: float,
    source: dict,
    tables: dict[str, list[dict]] | None = None,
) -> Path:
    """Write ``out_dir/report_data.json`` for the videos of ``pooled_by_seed``."""
    ids = [v.video_id for v in next(iter(pooled_by_seed.values())).videos]
    data = build_report_data(pooled_by_seed, threshold, video_files(source, ids), tables)
    path = Path(out_dir) / REPORT_DATA_FILE
    write_json_atomic(path, data, indent=None)  # compact: UCF-size runs hold ~70k points
    return path


def read_report_data(metrics_path: Path) -> dict:
    """report_data.json next to a metrics.json."""
    path = Path(metrics_path).with_name(REPORT_DATA_FILE)
    if not path.is_file():
        raise WsvadError(
            f"{path.parent}: no {REPORT_DATA_FILE} (evaluated by an older wsvad?); "
            "run `wsvad evaluate` on the run again"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WsvadError(f"{path}: not valid JSON ({exc.msg})") from exc
    if data.get("schema") != SCHEMA:
        raise WsvadError(f"{path}: not a wsvad report data file (schema {data.get('schema')!r})")
    return data


# ---------------------------------------------------------------------------- video files
def video_files(source: dict, video_ids: list[str]) -> dict[str, dict]:
    """Video id -> ``{"path": absolute path or None, "fps": frames per second or None}``.

    The path is the dataset root joined with the store's per-video ``source`` (run mode), else the
    dataset adapter's path (standalone mode); ``None`` when neither is known (imported features).
    The frame rate is the source video's, from the store, else read from the file's header.
    """
    store, root, dataset = source.get("store"), source.get("root"), source.get("dataset")
    found: dict[str, dict] = {}
    if store is not None and Path(store).is_dir():
        from wsvad.pipeline.store import FeatureStore

        fs = FeatureStore.open(Path(store))
        known = set(fs.video_ids())
        for vid in (v for v in video_ids if v in known):
            attrs = fs.video_attrs(vid)
            rel = attrs.get("source")
            path = Path(root) / rel if root is not None and rel else None
            found[vid] = {"path": path, "fps": attrs.get("source_fps") or attrs.get("fps")}
    elif dataset is not None and root is not None and Path(root).is_dir():
        from wsvad.evaluate.sources import dataset_test_index

        records, _, _ = dataset_test_index(dataset, Path(root))
        found = {r.video_id: {"path": Path(r.path), "fps": None} for r in records}
    out = {}
    for vid in video_ids:
        entry = found.get(vid) or {"path": None, "fps": None}
        path = entry["path"]
        fps = entry["fps"] or (_header_fps(path) if path is not None and path.is_file() else None)
        out[vid] = {
            "path": None if path is None else str(path.resolve()),
            "fps": None if not fps else float(fps),
        }
    return out


def _header_fps(path: Path) -> float | None:
    """The average frame rate a video file's header states (no decoding)."""
    try:
        import av

        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else None
    except Exception as exc:  # noqa: BLE001 - any container error means "unknown frame rate"
        log.debug("%s: no frame rate in the header (%s)", path, exc)
        return None
