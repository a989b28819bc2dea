"""``run_evaluate(cfg)``: the evaluate stage's one entry (used by ``wsvad evaluate`` and tests).

Three steps: resolve what to evaluate (a run directory or a scores file plus a dataset:
:mod:`wsvad.evaluate.inputs`), match each seed's scores to the ground truth and compute its
figures (:mod:`wsvad.evaluate.protocol`), then write the plots, ``per_video.csv`` and
``metrics.json`` (into ``RUN/eval/`` by default). Every video that cannot be evaluated is reported
(the mismatch table) instead of failing the evaluation.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from wsvad.atomic import atomic_path
from wsvad.config import config_hash, config_to_json
from wsvad.errors import EXIT_OK, EXIT_PARTIAL, WsvadError
from wsvad.evaluate import metrics as M
from wsvad.evaluate import plots, sources
from wsvad.evaluate.config import EvaluateConfig
from wsvad.evaluate.html_report import REPORT_FILE, write_html_report
from wsvad.evaluate.inputs import Inputs, resolve
from wsvad.evaluate.protocol import (
    Pooled,
    Protocol,
    VideoTruth,
    align_video,
    compute_metrics,
    per_video_table,
    pool,
)
from wsvad.evaluate.report import METRICS_FILE, build_report, write_json_atomic
from wsvad.evaluate.report_data import write_report_data
from wsvad.evaluate.sources import MatchProblem

log = logging.getLogger(__name__)
# Where things are, not how they are evaluated: left out of metrics.json's config_hash.
_PATH_KEYS = {
    "run",
    "scores",
    "root",
    "store",
    "out",
    "frame_cache",
    "plots",
    "timelines",
    "sample_seed",
    "report",
}
# Test videos of the dataset left out of the figures for want of a frame count or features.
_UNEVALUATED_TEST_VIDEOS = ("no frame count", "missing video", "not in store")
# Optional, next to scores.npz: (n_classes,) class probabilities per video.
CLASS_SCORES = "class_scores.npz"


@dataclass
class EvalOutcome:
    """What ``wsvad evaluate`` prints: the report (None when nothing matched) and the problems."""

    out_dir: Path
    report: dict | None
    problems: list[MatchProblem] = field(default_factory=list)
    n_test_videos: int = 0
    n_matched: int = 0

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.problems else EXIT_OK


def evaluate_scores(
    scores: dict[str, np.ndarray],
    truths: dict[str, VideoTruth],
    protocol: Protocol,
    class_names: list[str] | None = None,
    predicted_class: dict[str, int] | None = None,
) -> tuple[Pooled, dict]:
    """Align matched scores (keys must be in ``truths``) and compute every figure."""
    videos = [align_video(scores[vid], truths[vid], protocol) for vid in sorted(scores)]
    pooled = pool(videos)
    return pooled, compute_metrics(pooled, protocol, class_names, predicted_class)


def run_evaluate(cfg: EvaluateConfig) -> EvalOutcome:
    """Evaluate a run (every seed) or a scores file; writes metrics.json, per_video.csv and plots.

    Videos that cannot be evaluated (unknown ids, missing scores, no frame count, impossible
    snippet counts) become ``outcome.problems``; when no video matches, nothing is written and
    ``outcome.report`` is None.
    """
    with sources.memoised_index():
        return _run_evaluate(cfg)


def _run_evaluate(cfg: EvaluateConfig) -> EvalOutcome:
    inputs = resolve(cfg)
    per_seed, pooled_by_seed, problems, n_matched = _evaluate_seeds(cfg, inputs)
    outcome = EvalOutcome(
        inputs.out_dir,
        None,
        problems,
        len(inputs.truths) + sum(_count(problems, kind) for kind in _UNEVALUATED_TEST_VIDEOS),
        n_matched,
    )
    evaluated = {v.video_id for pooled in pooled_by_seed.values() for v in pooled.videos}
    inputs.protocol = replace(
        inputs.protocol, estimated_frame_counts=len(evaluated & inputs.estimated)
    )
    if per_seed:
        outcome.report = _write_results(cfg, inputs, per_seed, pooled_by_seed, outcome)
    return outcome


def _evaluate_seeds(
    cfg: EvaluateConfig, inputs: Inputs
) -> tuple[dict[str, dict], dict[str, Pooled], list[MatchProblem], int]:
    """Match each seed's scores to the ground truth and compute its figures.

    Returns:
        (figures per seed label, aligned videos per seed label, every problem, the largest number
        of matched videos of a seed); seeds without a single matched video are left out.
    """
    per_seed: dict[str, dict] = {}
    pooled_by_seed: dict[str, Pooled] = {}
    problems = list(inputs.problems)
    n_matched = 0
    # Videos already listed as unusable (no ground truth, no frame count, ...) are known ids whose
    # scores are set aside.
    unusable = {
        p.video_id for p in problems if p.kind in ("no ground truth", *_UNEVALUATED_TEST_VIDEOS)
    }
    for label, path in inputs.seed_scores.items():
        matched, seed_problems = _match_seed(path, inputs, unusable)
        problems += [
            p._replace(detail=f"{label}: {p.detail}") if label else p for p in seed_problems
        ]
        if not matched:
            continue
        n_matched = max(n_matched, len(matched))
        predicted = (
            _predicted_classes(path, inputs.source["store"], sorted(matched))
            if cfg.run is not None
            else None
        )
        pooled, figures = evaluate_scores(
            matched, inputs.truths, inputs.protocol, inputs.class_names, predicted
        )
        per_seed[label] = figures
        pooled_by_seed[label] = pooled
    return per_seed, pooled_by_seed, problems, n_matched


def _match_seed(
    path: Path, inputs: Inputs, unusable: set[str]
) -> tuple[dict[str, np.ndarray], list[MatchProblem]]:
    """The scores of one seed that can be evaluated, and the problems of the others: unknown ids,
    impossible snippet counts, test videos without scores."""
    raw = sources.load_scores(path)
    matched, problems = sources.match_scores(raw, set(inputs.truths) | unusable)
    for vid in unusable:
        matched.pop(vid, None)
    bad = sources.check_snippet_counts(matched, inputs.truths, inputs.protocol.stride)
    for p in bad:
        matched.pop(p.video_id)
    unscored = set(inputs.truths) - set(matched) - {p.video_id for p in bad}
    problems += bad + [
        MatchProblem(vid, "no scores", "test video without scores") for vid in sorted(unscored)
    ]
    return matched, problems


def _write_results(
    cfg: EvaluateConfig,
    inputs: Inputs,
    per_seed: dict[str, dict],
    pooled_by_seed: dict[str, Pooled],
    outcome: EvalOutcome,
) -> dict:
    """Write the plots, per_video.csv and metrics.json into ``inputs.out_dir``; returns the
    report (the content of metrics.json)."""
    inputs.out_dir.mkdir(parents=True, exist_ok=True)
    plot_files = _plots(cfg, inputs, pooled_by_seed) if cfg.plots else []
    tables = _write_per_video(inputs.out_dir / "per_video.csv", pooled_by_seed)
    multi = len(inputs.seed_scores) > 1
    cfg_json = config_to_json(cfg)
    report = build_report(
        metrics=None if multi else per_seed[next(iter(per_seed))],
        per_seed=per_seed if multi else None,
        protocol=inputs.protocol.to_json(),
        config=cfg_json,
        config_hash=config_hash({k: v for k, v in cfg_json.items() if k not in _PATH_KEYS}),
        source=inputs.source,
        seeds=inputs.seeds,
        model_selection=inputs.model_selection,
        coverage={
            "test_videos": outcome.n_test_videos,
            "matched": outcome.n_matched,
            "problems": [p._asdict() for p in outcome.problems],
        },
        plots=[str(p.relative_to(inputs.out_dir)) for p in plot_files],
    )
    write_json_atomic(inputs.out_dir / METRICS_FILE, report)
    threshold = inputs.protocol.threshold
    write_report_data(inputs.out_dir, pooled_by_seed, threshold, inputs.source, tables)
    if cfg.report:
        write_html_report([inputs.out_dir], inputs.out_dir / REPORT_FILE)
    return report


def _count(problems: list[MatchProblem], kind: str) -> int:
    return sum(1 for p in problems if p.kind == kind)


def _predicted_classes(
    scores_path: Path, store: str | None, video_ids: list[str]
) -> dict[str, int] | None:
    """Predicted class of each video for mAA: from ``class_scores.npz`` next to the scores, else by
    running the run's detector on the store when it has a classification head
    (``classify_video``)."""
    folder = Path(scores_path).parent
    if (folder / CLASS_SCORES).is_file():
        with np.load(folder / CLASS_SCORES, allow_pickle=False) as data:
            return {key: int(np.argmax(data[key])) for key in data.files}
    meta_path = folder / "model.json"
    if store is None or not meta_path.is_file() or not Path(store).is_dir():
        return None
    from wsvad.detectors import detector_class

    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    try:
        cls = detector_class(meta.get("detector", ""))
    except WsvadError:  # a detector this version does not know: no mAA
        return None
    if not hasattr(cls, "classify_video") or int(meta.get("n_classes", 1)) < 2:
        return None
    return _classify_with_model(folder, Path(store), video_ids)


def _classify_with_model(run_dir: Path, store_path: Path, video_ids: list[str]) -> dict[str, int]:
    """Predicted classes from the run's model, its inputs prepared by the run's scoring recipe
    (the same crops, bags and pooling as its anomaly scores)."""
    from wsvad.pipeline.store import FeatureStore
    from wsvad.scoring.score import classify_features, load_scoring_model

    model = load_scoring_model(run_dir)
    store = FeatureStore.open(store_path)
    return {
        vid: int(np.argmax(classify_features(model.detector, model.recipe, store.read(vid))))
        for vid in video_ids
    }


# ---------------------------------------------------------------------------- outputs
def _write_per_video(path: Path, pooled_by_seed: dict[str, Pooled]) -> dict[str, list[dict]]:
    """per_video.csv; returns its rows per seed (per_video_table's, reused by the report data)."""
    columns = [
        "seed",
        "video_id",
        "label",
        "classes",
        "n_frames",
        "anomalous_frames",
        "mean_score",
        "max_score",
        "auc",
        "error",
    ]
    tables = {label: per_video_table(pooled) for label, pooled in pooled_by_seed.items()}
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for label, rows in tables.items():
            for row in rows:
                row = row | {"seed": label or "-", "classes": "+".join(row["classes"])}
                writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return tables


def _pick_timelines(rows: list[dict], n: int, seed: int) -> list[tuple[str, dict]]:
    """``n`` best and ``n`` worst videos by mean |score - label|, and ``n`` others at random."""
    ranked = sorted(rows, key=lambda r: r["error"])
    best, worst = ranked[:n], ranked[::-1][:n]
    chosen = {r["video_id"] for r in best + worst}
    rest = [r for r in rows if r["video_id"] not in chosen]
    sample = random.Random(seed).sample(rest, min(n, len(rest)))
    picks = (
        [("best", r) for r in best]
        + [("worst", r) for r in worst if r not in best]
        + [("sample", r) for r in sample]
    )
    return picks


def _plots(cfg: EvaluateConfig, inputs: Inputs, pooled_by_seed: dict[str, Pooled]) -> list[Path]:
    out = inputs.out_dir
    roc_curves, pr_curves = [], []
    for label, pooled in pooled_by_seed.items():
        runs = M.compress_runs(pooled.gt, pooled.scores)
        if len(np.unique(runs.labels)) < 2:
            continue
        name = label or "scores"
        fpr, tpr = M.roc_points(runs)
        recall, precision = M.pr_points(runs)
        roc_curves.append((f"{name}  AUC {100 * M.frame_roc_auc(runs):.2f}", fpr, tpr))
        pr_curves.append((f"{name}  AP {100 * M.average_precision(runs):.2f}", recall, precision))
    files = []
    first = next(iter(pooled_by_seed.values()))
    if roc_curves:
        files.append(
            plots.plot_roc(
                roc_curves, out / "roc.png", title=f"Frame-level ROC ({inputs.protocol.alignment})"
            )
        )
        files.append(
            plots.plot_pr(
                pr_curves,
                out / "pr.png",
                base_rate=float(first.gt.mean()),
                title=f"Frame-level PR ({inputs.protocol.alignment})",
            )
        )
    by_id = {
        label: {v.video_id: v for v in pooled.videos} for label, pooled in pooled_by_seed.items()
    }
    for group, row in _pick_timelines(per_video_table(first), cfg.timelines, cfg.sample_seed):
        vid = row["video_id"]
        video = by_id[next(iter(by_id))][vid]
        series = {
            label or "score": seed_videos[vid].scores
            for label, seed_videos in by_id.items()
            if vid in seed_videos
        }
        # the title names the metric the best/worst ranking used, then the video's AUC
        auc_text = f", mean |score - label| {row['error']:.3f}"
        auc_text += "" if row["auc"] is None else f", AUC {100 * row['auc']:.1f}"
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in vid)
        files.append(
            plots.plot_timeline(
                out / "timelines" / f"{group}-{safe}.png",
                video.gt,
                series,
                title=f"{vid} ({group}{auc_text})",
                threshold=inputs.protocol.threshold,
            )
        )
    return files
