"""``run_evaluate(cfg)``: the evaluate stage's one entry (used by ``wsvad evaluate`` and tests).

Run mode reads ``RUN/run.json`` (store, dataset, root, snippet geometry, seeds, model selection),
``RUN/scores.npz`` or ``RUN/seed-<k>/scores.npz``, and the ground truth from the store's per-video
attrs; it writes into ``RUN/eval/``. Standalone mode takes any scores file plus a dataset. Both
write ``metrics.json``, ``per_video.csv`` and the plots, and report every video that could not be
evaluated (the mismatch table) instead of failing on it.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsvad.config import config_hash, config_to_json
from wsvad.errors import EXIT_OK, EXIT_PARTIAL, WsvadError
from wsvad.evaluate import metrics as M
from wsvad.evaluate import plots, sources
from wsvad.evaluate.config import EvaluateConfig
from wsvad.evaluate.html_report import REPORT_FILE, write_html_report
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
CLASS_SCORES = (
    "class_scores.npz"  # optional, next to scores.npz: (n_classes,) probabilities per video
)


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


@dataclass
class _Inputs:
    seed_scores: dict[str, Path]  # seed label ("" for a single run) -> scores file
    truths: dict[str, VideoTruth]
    problems: list[MatchProblem]
    class_names: list[str] | None
    protocol: Protocol
    out_dir: Path
    source: dict
    seeds: list[int] | None
    model_selection: object


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
    inputs = _resolve(cfg)
    per_seed: dict[str, dict] = {}
    pooled_by_seed: dict[str, Pooled] = {}
    problems = list(inputs.problems)
    n_matched = 0
    # Videos already listed as unusable (no ground truth) are known ids whose scores are set aside.
    unusable = {p.video_id for p in problems if p.kind == "no ground truth"}
    for label, path in inputs.seed_scores.items():
        raw = sources.load_scores(path)
        matched, seed_problems = sources.match_scores(raw, set(inputs.truths) | unusable)
        for vid in unusable:
            matched.pop(vid, None)
        bad = sources.check_snippet_counts(matched, inputs.truths, inputs.protocol.stride)
        for p in bad:
            matched.pop(p.video_id)
        unscored = set(inputs.truths) - set(matched) - {p.video_id for p in bad}
        seed_problems += bad + [
            MatchProblem(vid, "no scores", "test video without scores") for vid in sorted(unscored)
        ]
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
    outcome = EvalOutcome(
        inputs.out_dir,
        None,
        problems,
        len(inputs.truths) + _count(problems, "no frame count"),
        n_matched,
    )
    if not per_seed:
        return outcome
    inputs.out_dir.mkdir(parents=True, exist_ok=True)
    plot_files = _plots(cfg, inputs, pooled_by_seed) if cfg.plots else []
    tables = _write_per_video(inputs.out_dir / "per_video.csv", pooled_by_seed)
    multi = len(inputs.seed_scores) > 1
    cfg_json = config_to_json(cfg)
    outcome.report = build_report(
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
            "matched": n_matched,
            "problems": [p._asdict() for p in problems],
        },
        plots=[str(p.relative_to(inputs.out_dir)) for p in plot_files],
    )
    write_json_atomic(inputs.out_dir / METRICS_FILE, outcome.report)
    threshold = inputs.protocol.threshold
    write_report_data(inputs.out_dir, pooled_by_seed, threshold, inputs.source, tables)
    if cfg.report:
        write_html_report([inputs.out_dir], inputs.out_dir / REPORT_FILE)
    return outcome


def _count(problems: list[MatchProblem], kind: str) -> int:
    return sum(1 for p in problems if p.kind == kind)


# ---------------------------------------------------------------------------- inputs
def _read_run_json(run: Path) -> dict:
    path = run / "run.json"
    if not path.is_file():
        raise WsvadError(
            f"{run}: not a run directory (no run.json; was it written by `wsvad train`?)"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WsvadError(f"{path}: not valid JSON ({exc.msg})") from exc


def _seed_dirs(run: Path) -> dict[str, Path]:
    found = {}
    for child in sorted(run.glob("seed-*")):
        if (child / "scores.npz").is_file():
            found[child.name] = child / "scores.npz"
    return dict(
        sorted(
            found.items(),
            key=lambda kv: int(kv[0].split("-", 1)[1]) if kv[0].split("-", 1)[1].isdigit() else 0,
        )
    )


def _resolve(cfg: EvaluateConfig) -> _Inputs:
    if cfg.run is None and cfg.scores is None:
        raise WsvadError(
            "nothing to evaluate: give --run RUN or --scores FILE (with --dataset, --root and --out)"
        )
    store_attrs: dict = {}
    problems: list[MatchProblem] = []
    run_json: dict = {}
    if cfg.run is not None:
        run = Path(cfg.run)
        run_json = _read_run_json(run)
        seed_scores = _seed_dirs(run) or (
            {"": run / "scores.npz"} if (run / "scores.npz").is_file() else {}
        )
        if not seed_scores:
            raise WsvadError(
                f"{run}: no scores.npz (and no seed-<k>/scores.npz); did training finish?"
            )
        first_dir = next(iter(seed_scores.values())).parent
        if first_dir != run and (first_dir / "run.json").is_file():
            # A multi-seed run.json lists the seeds; store, dataset and geometry are in each seed's.
            run_json = _read_run_json(first_dir) | {
                k: v for k, v in run_json.items() if v is not None
            }
        run_json.setdefault("config_hash", _run_config_hash(run))
        out_dir = Path(cfg.out) if cfg.out is not None else run / "eval"
        store = cfg.store or run_json.get("store")
        dataset, root = cfg.dataset or run_json.get("dataset"), cfg.root or run_json.get("root")
    else:
        seed_scores = {"": Path(cfg.scores)}
        out_dir, store, dataset, root = Path(cfg.out), cfg.store, cfg.dataset, cfg.root
    class_names = run_json.get("class_names")
    estimated: list[str] = []
    if cfg.run is not None and store is not None and Path(store).is_dir():
        from wsvad.pipeline.store import FeatureStore

        attrs = FeatureStore.open(Path(store)).attrs
        geometry = _geometry(cfg, run_json, attrs)
        truths, store_attrs, problems, estimated = sources.truths_from_store(
            Path(store), dataset, root, geometry[1]
        )
    else:
        if dataset is None or root is None:
            raise WsvadError(
                f"{cfg.run}: the run's store {store} is gone and run.json names no dataset/root; pass --dataset and --root"
            )
        if store is not None:
            from wsvad.pipeline.store import FeatureStore

            store_attrs = FeatureStore.open(Path(store)).attrs
        # An imported store's dataset root may hold only the lists: no video is needed for the labels.
        imported = (store_attrs.get("provenance") or {}).get("kind") == "imported"
        records, dataset_classes = sources.dataset_test_records(
            dataset, Path(root), labels_only=imported
        )
        class_names = class_names or dataset_classes
        if store is not None:
            counts = sources.frame_counts_from_store(Path(store))
            # Frame counts the dataset's own files state (SH masks, UR-DMU) fill the store's unknown ones.
            counts |= {
                r.video_id: r.n_frames
                for r in records
                if counts.get(r.video_id) is None and r.n_frames is not None
            }
        else:
            counts = sources.probe_frame_counts(records, cfg.frame_cache)
        truths, problems = sources.truths_from_records(records, counts)
    if class_names is None:
        class_names = ["Normal", *sorted({c for t in truths.values() for c in t.classes})]
    snippet_len, stride = _geometry(cfg, run_json, store_attrs)
    protocol = Protocol(
        cfg.alignment, snippet_len, stride, cfg.threshold, cfg.class_negatives, len(estimated)
    )
    seeds = run_json.get("seeds") or ([run_json["seed"]] if "seed" in run_json else None)
    source = {
        "run": _str(cfg.run),
        "scores": {k or "run": str(v) for k, v in seed_scores.items()},
        "store": _str(store),
        "dataset": dataset,
        "root": _str(root),
        "run_config_hash": run_json.get("config_hash"),
        "store_fingerprint": run_json.get("store_fingerprint") or store_attrs.get("config_hash"),
        "backbone": store_attrs.get("backbone"),
        "detector": run_json.get("detector"),
        "training_collapse": _collapse_note(run_json),
    }
    return _Inputs(
        seed_scores,
        truths,
        problems,
        class_names,
        protocol,
        out_dir,
        source,
        seeds,
        run_json.get("model_selection", "external scores" if cfg.run is None else None),
    )


def _collapse_note(run_json: dict) -> str | None:
    """The train stage's collapse message(s): a single run's, or those of a multi-seed run's seeds."""
    if run_json.get("collapse"):
        return run_json["collapse"]
    notes = [
        f"seed {r.get('seed')}: {r['collapse']}"
        for r in run_json.get("runs", [])
        if r.get("collapse")
    ]
    return "; ".join(notes) or None


def _geometry(cfg: EvaluateConfig, run_json: dict, store_attrs: dict) -> tuple[int, int]:
    """``(snippet_len, stride)``: the command line, else the run, else the store, else 16."""
    snippet_len = (
        cfg.snippet_len or run_json.get("snippet_len") or store_attrs.get("snippet_len") or 16
    )
    stride = cfg.stride or run_json.get("stride") or store_attrs.get("stride") or snippet_len
    return int(snippet_len), int(stride)


def _run_config_hash(run: Path) -> str | None:
    """Hash of the run's resolved training config (RUN/config.yaml), the same hash for the same config."""
    import yaml

    path = run / "config.yaml"
    if not path.is_file():
        return None
    try:
        return config_hash(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError:
        return None


def _str(value) -> str | None:
    return None if value is None else str(value)


def _predicted_classes(
    scores_path: Path, store: str | None, video_ids: list[str]
) -> dict[str, int] | None:
    """Predicted class of each video for mAA: from ``class_scores.npz`` next to the scores, else by
    running the run's detector when it has a classification head (``classify_video``) on the store."""
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
    except KeyError:
        return None
    if not hasattr(cls, "classify_video") or int(meta.get("n_classes", 1)) < 2:
        return None
    return _classify_with_model(folder / "model", Path(store), video_ids)


def _classify_with_model(stem: Path, store_path: Path, video_ids: list[str]) -> dict[str, int]:
    import torch

    from wsvad.detectors.checkpoint import load_detector
    from wsvad.pipeline.store import FeatureStore

    detector, _ = load_detector(stem)
    store = FeatureStore.open(store_path)
    predicted = {}
    with torch.no_grad():
        for vid in video_ids:
            raw = store.read(vid)  # (N, C, *F)
            # Class probabilities per crop, averaged like the anomaly scores (the common protocol).
            crops = [
                torch.from_numpy(np.ascontiguousarray(raw[:, c], dtype=np.float32))
                for c in range(raw.shape[1])
            ]
            probs = [detector.classify_video(x) for x in crops]  # C x (n_classes,)
            predicted[vid] = int(torch.stack(probs).mean(0).argmax())
    return predicted


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
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for label, rows in tables.items():
            for row in rows:
                row = row | {"seed": label or "-", "classes": "+".join(row["classes"])}
                writer.writerow(["" if row[c] is None else row[c] for c in columns])
    tmp.replace(path)
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


def _plots(cfg: EvaluateConfig, inputs: _Inputs, pooled_by_seed: dict[str, Pooled]) -> list[Path]:
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
        auc_text = "" if row["auc"] is None else f", AUC {100 * row['auc']:.1f}"
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
