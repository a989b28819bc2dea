"""What ``wsvad evaluate`` evaluates, resolved from its config into :class:`Inputs`.

Run mode (``--run``) reads ``RUN/run.json`` (store, dataset, root, snippet geometry, seeds, model
selection; a multi-seed run's merged over its first seed's) and finds ``RUN/scores.npz`` or
``RUN/seed-<k>/scores.npz``; the ground truth comes from the store's per-video attrs, or from the
dataset when the store is gone. Standalone mode (``--scores``) takes any scores file plus a
dataset (and optionally a store for the frame counts). Both end in the same protocol and
provenance (:func:`_inputs`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from wsvad.config import config_hash
from wsvad.errors import WsvadError
from wsvad.evaluate import sources
from wsvad.evaluate.config import EvaluateConfig
from wsvad.evaluate.protocol import Protocol, VideoTruth
from wsvad.evaluate.sources import MatchProblem
from wsvad.runs import training_warning


@dataclass
class Inputs:
    """What an evaluation reads: the scores files, the ground truth, the protocol and where the
    results go."""

    seed_scores: dict[str, Path]  # seed label ("" for a single run) -> scores file
    truths: dict[str, VideoTruth]
    problems: list[MatchProblem]
    class_names: list[str] | None
    protocol: Protocol
    out_dir: Path
    source: dict  # provenance recorded in metrics.json (run, scores files, store, dataset, ...)
    seeds: list[int] | None
    model_selection: object  # the run's selection mode; "external scores" for a scores file


@dataclass
class _Locations:
    """Where the scores, the ground truth and the outputs of one evaluation are."""

    seed_scores: dict[str, Path]  # seed label ("" for a single run) -> scores file
    out_dir: Path
    store: str | Path | None
    dataset: str | None
    root: str | Path | None
    run_json: dict  # the run's run.json ({} for a scores file)


@dataclass
class _GroundTruth:
    """The test videos' ground truth, and the videos left out of it."""

    truths: dict[str, VideoTruth]
    problems: list[MatchProblem]
    store_attrs: dict  # the store's attrs ({} without a store)
    class_names: list[str] | None
    estimated: list[str]  # videos whose frame count is estimated (T x stride)


def resolve(cfg: EvaluateConfig) -> Inputs:
    """Everything an evaluation needs, in run mode (``--run``) or standalone mode (``--scores``)."""
    if cfg.run is None and cfg.scores is None:
        raise WsvadError(
            "nothing to evaluate: give --run RUN or --scores FILE "
            "(with --dataset, --root and --out)"
        )
    where = _run_locations(cfg) if cfg.run is not None else _scores_locations(cfg)
    if cfg.run is not None and where.store is not None and Path(where.store).is_dir():
        truth = _truth_from_store(cfg, where)
    else:
        truth = _truth_from_dataset(cfg, where)
    return _inputs(cfg, where, truth)


def _run_locations(cfg: EvaluateConfig) -> _Locations:
    """Run mode: the seeds' scores files and run.json; store, dataset and root from the command
    line, else from the run."""
    run = Path(cfg.run)
    run_json = _read_run_json(run)
    seed_scores = _seed_dirs(run) or (
        {"": run / "scores.npz"} if (run / "scores.npz").is_file() else {}
    )
    if not seed_scores:
        raise WsvadError(f"{run}: no scores.npz (and no seed-<k>/scores.npz); did training finish?")
    first_dir = next(iter(seed_scores.values())).parent
    if first_dir != run and (first_dir / "run.json").is_file():
        # A multi-seed run.json lists the seeds; store, dataset and geometry are in each seed's.
        run_json = _read_run_json(first_dir) | {k: v for k, v in run_json.items() if v is not None}
    run_json.setdefault("config_hash", _run_config_hash(run))
    return _Locations(
        seed_scores,
        Path(cfg.out) if cfg.out is not None else run / "eval",
        cfg.store or run_json.get("store"),
        cfg.dataset or run_json.get("dataset"),
        cfg.root or run_json.get("root"),
        run_json,
    )


def _scores_locations(cfg: EvaluateConfig) -> _Locations:
    """Standalone mode: one scores file, and the dataset (and store) the command line names."""
    return _Locations({"": Path(cfg.scores)}, Path(cfg.out), cfg.store, cfg.dataset, cfg.root, {})


def _truth_from_store(cfg: EvaluateConfig, where: _Locations) -> _GroundTruth:
    """Run mode with the run's store at hand: its per-video attrs are the ground truth."""
    from wsvad.pipeline.store import FeatureStore

    attrs = FeatureStore.open(Path(where.store)).attrs
    stride = _geometry(cfg, where.run_json, attrs)[1]
    truths, store_attrs, problems, estimated = sources.truths_from_store(
        Path(where.store), where.dataset, where.root, stride
    )
    return _GroundTruth(truths, problems, store_attrs, where.run_json.get("class_names"), estimated)


def _truth_from_dataset(cfg: EvaluateConfig, where: _Locations) -> _GroundTruth:
    """Ground truth from the dataset's test records; frame counts from the store when there is
    one, else counted in the videos (cached in ``cfg.frame_cache``)."""
    if where.dataset is None or where.root is None:
        raise WsvadError(
            f"{cfg.run}: the run's store {where.store} is gone and run.json names no "
            "dataset/root; pass --dataset and --root"
        )
    store_attrs: dict = {}
    imported = False
    if where.store is not None:
        from wsvad.pipeline.store import FeatureStore

        store = FeatureStore.open(Path(where.store))
        store_attrs = store.attrs
        # An imported store's dataset root may hold only the lists: no video is needed for labels.
        imported = store.provenance_kind == "imported"
    records, dataset_classes = sources.dataset_test_records(
        where.dataset, Path(where.root), labels_only=imported
    )
    if where.store is not None:
        counts = sources.frame_counts_from_store(Path(where.store))
        # Frame counts the dataset's own files state (SH masks, UR-DMU) fill the store's unknown
        # ones.
        counts |= {
            r.video_id: r.n_frames
            for r in records
            if counts.get(r.video_id) is None and r.n_frames is not None
        }
    else:
        counts = sources.probe_frame_counts(records, cfg.frame_cache)
    truths, problems = sources.truths_from_records(records, counts)
    class_names = where.run_json.get("class_names") or dataset_classes
    return _GroundTruth(truths, problems, store_attrs, class_names, [])


def _inputs(cfg: EvaluateConfig, where: _Locations, truth: _GroundTruth) -> Inputs:
    """The protocol (geometry from the command line, the run or the store), the class names and
    the provenance recorded in metrics.json, around the ground truth."""
    run_json = where.run_json
    class_names = truth.class_names
    if class_names is None:
        class_names = ["Normal", *sorted({c for t in truth.truths.values() for c in t.classes})]
    snippet_len, stride = _geometry(cfg, run_json, truth.store_attrs)
    protocol = Protocol(
        cfg.alignment, snippet_len, stride, cfg.threshold, cfg.class_negatives, len(truth.estimated)
    )
    seeds = run_json.get("seeds") or ([run_json["seed"]] if "seed" in run_json else None)
    source = {
        "run": _str(cfg.run),
        "scores": {k or "run": str(v) for k, v in where.seed_scores.items()},
        "store": _str(where.store),
        "dataset": where.dataset,
        "root": _str(where.root),
        "run_config_hash": run_json.get("config_hash"),
        "store_fingerprint": run_json.get("store_fingerprint")
        or truth.store_attrs.get("config_hash"),
        "backbone": truth.store_attrs.get("backbone"),
        "detector": run_json.get("detector"),
        "training_collapse": _collapse_note(run_json),
    }
    return Inputs(
        where.seed_scores,
        truth.truths,
        truth.problems,
        class_names,
        protocol,
        where.out_dir,
        source,
        seeds,
        run_json.get("model_selection", "external scores" if cfg.run is None else None),
    )


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


def _collapse_note(run_json: dict) -> str | None:
    """The train stage's collapse message(s): a single run's, or those of a multi-seed run's
    seeds."""
    if run_json.get("collapse"):
        return run_json["collapse"]
    notes = [
        f"seed {r.get('seed')}: {r['collapse']}"
        for r in run_json.get("runs", [])
        if r.get("collapse")
    ]
    return training_warning(None, notes)


def _geometry(cfg: EvaluateConfig, run_json: dict, store_attrs: dict) -> tuple[int, int]:
    """``(snippet_len, stride)``: the command line, else the run, else the store, else 16."""
    snippet_len = (
        cfg.snippet_len or run_json.get("snippet_len") or store_attrs.get("snippet_len") or 16
    )
    stride = cfg.stride or run_json.get("stride") or store_attrs.get("stride") or snippet_len
    return int(snippet_len), int(stride)


def _run_config_hash(run: Path) -> str | None:
    """Hash of the run's resolved training config (RUN/config.yaml): the same hash for the same
    config."""
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
