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

from wsvad import locks
from wsvad.config import config_hash
from wsvad.data.groundtruth import DEFAULT_ALIGNMENT
from wsvad.errors import WsvadError
from wsvad.evaluate import sources
from wsvad.evaluate.authors import AUTHORS_STRIDE, authors_protocol
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
    estimated: set[str]  # test videos whose frame count is an estimate (T x stride)


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
    estimated: set[str]  # videos whose frame count is estimated (T x stride)


def resolve(cfg: EvaluateConfig) -> Inputs:
    """Everything an evaluation needs, in run mode (``--run``) or standalone mode (``--scores``)."""
    if cfg.run is None and cfg.scores is None:
        raise WsvadError(
            "nothing to evaluate: give --run RUN or --scores FILE "
            "(with --dataset, --root and --out)"
        )
    where = _run_locations(cfg) if cfg.run is not None else _scores_locations(cfg)
    if cfg.protocol == "authors":  # fail before reading the ground truth
        authors_protocol(where.dataset, cfg.alignment, AUTHORS_STRIDE)
    if cfg.run is not None and where.store is not None and Path(where.store).is_dir():
        labels_from = str(where.run_json.get("labels_from") or "")
        follows_dataset = (
            labels_from.startswith("dataset ")
            and where.dataset is not None
            and where.root is not None
        )
        truth = (
            _truth_from_run_dataset(cfg, where)
            if follows_dataset
            else _truth_from_store(cfg, where)
        )
    else:
        truth = _truth_from_dataset(cfg, where)
    return _inputs(cfg, where, truth)


def _run_locations(cfg: EvaluateConfig) -> _Locations:
    """Run mode: the seeds' scores files and run.json; store, dataset and root from the command
    line, else from the run."""
    run = Path(cfg.run)
    _refuse_a_run_being_trained(run)
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
    return _GroundTruth(
        truths, problems, store_attrs, where.run_json.get("class_names"), set(estimated)
    )


def _truth_from_run_dataset(cfg: EvaluateConfig, where: _Locations) -> _GroundTruth:
    """Run mode, trained on a dataset's labels (run.json ``labels_from``): the test videos and
    their ground truth are the dataset's, as training saw them, never the ``split``/label attrs
    frozen in the store at extraction (a store extracted before its videos were labelled has every
    video as an unlabelled test video); frame counts are the store's."""
    from wsvad.pipeline.store import FeatureStore

    if not Path(where.root).is_dir():
        raise WsvadError(
            f"{where.root}: the root of the dataset the run took its labels from (run.json) is "
            "not a directory; pass --root"
        )
    store = FeatureStore.open(Path(where.store))
    stride = _geometry(cfg, where.run_json, store.attrs)[1]
    records, dataset_classes, _ = sources.dataset_test_index(where.dataset, Path(where.root))
    counts, estimated = sources.frame_counts_from_store(Path(where.store), stride)
    counts, estimated = sources.add_dataset_counts(records, counts, estimated)
    held = set(store.video_ids())
    problems = [
        MatchProblem(
            r.video_id,
            "not in store",
            f"a test video of the {where.dataset} dataset at {where.root} that {where.store} "
            "does not hold",
        )
        for r in records
        if r.video_id not in held
    ]
    truths, more = sources.truths_from_records([r for r in records if r.video_id in held], counts)
    class_names = where.run_json.get("class_names") or dataset_classes
    return _GroundTruth(truths, problems + more, store.attrs, class_names, estimated)


def _truth_from_dataset(cfg: EvaluateConfig, where: _Locations) -> _GroundTruth:
    """Ground truth from the dataset's test records; frame counts from the store when there is
    one, else counted in the videos (cached in ``cfg.frame_cache``)."""
    if where.dataset is None or where.root is None:
        raise WsvadError(
            f"{cfg.run}: the run's store {where.store} is gone and run.json names no "
            "dataset/root; pass --dataset and --root"
        )
    # The lists give every test video, on disk or not; the frame counts come from the store, else
    # from the videos.
    records, dataset_classes, absent = sources.dataset_test_index(where.dataset, Path(where.root))
    store_attrs: dict = {}
    authors = cfg.protocol == "authors"
    # A run's store that is gone leaves the videos; a --store given on the command line must open.
    if where.store is not None and (cfg.run is None or Path(where.store).is_dir()):
        from wsvad.pipeline.store import FeatureStore

        store_attrs = FeatureStore.open(Path(where.store)).attrs
        stride = _geometry(cfg, where.run_json, store_attrs)[1]
        counts, estimated = sources.frame_counts_from_store(Path(where.store), stride)
        problems = []  # the features stand for the videos
    else:
        missing = {p.video_id for p in absent}
        counts = sources.probe_frame_counts(
            [r for r in records if r.video_id not in missing], cfg.frame_cache
        )
        estimated = set()
        # The authors' alignment needs no frame count (T x 16 frames): absent videos are no loss.
        problems = [] if authors else absent
        records = records if authors else [r for r in records if r.video_id not in missing]
    counts = {vid: n for vid, n in counts.items() if n is not None}
    counts, estimated = sources.add_dataset_counts(records, counts, estimated)
    truths, more = sources.truths_from_records(records, counts, unknown_ok=authors)
    estimated |= {vid for vid, t in truths.items() if t.n_frames is None}
    class_names = where.run_json.get("class_names") or dataset_classes
    return _GroundTruth(truths, problems + more, store_attrs, class_names, estimated)


def _inputs(cfg: EvaluateConfig, where: _Locations, truth: _GroundTruth) -> Inputs:
    """The protocol (geometry from the command line, the run or the store), the class names and
    the provenance recorded in metrics.json, around the ground truth."""
    run_json = where.run_json
    class_names = truth.class_names
    if class_names is None:
        class_names = ["Normal", *sorted({c for t in truth.truths.values() for c in t.classes})]
    snippet_len, stride = _geometry(cfg, run_json, truth.store_attrs)
    protocol = _protocol(cfg, where.dataset, snippet_len, stride)
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
        truth.estimated,
    )


def _protocol(cfg: EvaluateConfig, dataset: str | None, snippet_len: int, stride: int) -> Protocol:
    """wsvad's protocol (``cfg.alignment``, true-frames by default), or the authors' one of the
    dataset; the count of estimated frame counts is set once the scores are matched."""
    if cfg.protocol == "wsvad":
        alignment = cfg.alignment or DEFAULT_ALIGNMENT
        return Protocol(alignment, snippet_len, stride, cfg.threshold, cfg.class_negatives)
    entry = authors_protocol(dataset, cfg.alignment, stride)
    return Protocol(
        entry.alignment,
        snippet_len,
        stride,
        cfg.threshold,
        cfg.class_negatives,
        name="authors",
        reproduces=entry.code,
        paper_figure=entry.figure,
    )


def _refuse_a_run_being_trained(run: Path) -> None:
    """A run whose ``wsvad train`` is still writing has scores and weights of a moment, not of the
    finished run: refused naming the training process (a seed of a multi-seed run: its parent)."""
    owners = [run, run.parent] if run.name.startswith("seed-") else [run]
    for owner in owners:
        locks.refuse_if_held(owner / locks.LOCK, owner, "training into this run directory")


def _read_run_json(run: Path) -> dict:
    path = run / "run.json"
    if not path.is_file():
        raise WsvadError(
            f"{run}: not a run directory (no run.json; was it written by `wsvad train`?)"
        )
    return read_json_object(path)


def read_json_object(path: Path) -> dict:
    """A JSON object from a file wsvad wrote (run.json, model.json); anything else is refused with
    one line naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise WsvadError(f"{path}: not valid JSON ({exc.msg})") from exc
    except UnicodeDecodeError as exc:
        raise WsvadError(f"{path}: not a text file ({exc.reason})") from exc
    if not isinstance(data, dict):
        raise WsvadError(f"{path}: not a JSON object (got {type(data).__name__})")
    return data


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
