"""``run_train(cfg)``: store -> bag cache -> detector training -> RUN/ (see docs/architecture.md)."""

from __future__ import annotations

import json
import logging
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wsvad import __version__
from wsvad.config import config_to_json, save_config
from wsvad.errors import WsvadError
from wsvad.pipeline.store import FeatureStore
from wsvad.train.config import TrainConfig, resolve, with_seed
from wsvad.train.data import LabelReport

log = logging.getLogger(__name__)

TEST_SELECTION_WARNING = (
    "model selected on the TEST set (test-best): optimistic, not comparable to held-out results"
)
# Keys that may change between a run and its resumption (training longer is allowed).
_RESUMABLE_CHANGES = {"iterations", "epochs", "checkpoint_every", "log_every"}


@dataclass
class TrainResult:
    run_dir: Path
    seed: int
    steps: int
    finished: bool
    frame_auc: float | None  # quick frame AUC on the test split (None without frame labels)
    selection: str
    selected_step: int | None
    report: LabelReport | None = None
    seconds: float = 0.0
    members: list[TrainResult] = field(default_factory=list)  # multi-seed runs
    collapse: str | None = None  # set when every test score came out the same

    @property
    def warning(self) -> str | None:
        notes = [TEST_SELECTION_WARNING] if self.selection == "test-best" else []
        notes += [m.collapse for m in self.members or [self] if m.collapse]
        return "; ".join(dict.fromkeys(notes)) or None


def _auc_summary(values: list[float | None]) -> dict[str, Any]:
    got = [v for v in values if v is not None]
    if not got:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": statistics.fmean(got),
        "std": statistics.stdev(got) if len(got) > 1 else 0.0,
        "n": len(got),
    }


def run_train(
    cfg: TrainConfig,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    stop_after: int | None = None,
    overwrite: bool = False,
    cache_progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train one run (``cfg.seed``) or one run per seed of ``cfg.seeds`` under ``out/seed-<k>/``.

    Args:
        cfg: the train config (keys left unset are resolved from the detector's paper settings).
        progress: ``callable(step, total, logged)`` after every optimizer step.
        stop_after: stop with a checkpoint after this many steps (tests of resumption).
        overwrite: delete an existing run in ``cfg.out`` instead of resuming it.
        cache_progress: ``callable(done, total)`` while the bag cache is being built.
    """
    if not cfg.seeds:
        return _run_single(cfg, progress, stop_after, overwrite, cache_progress)
    out = Path(cfg.out)
    members = []
    for seed in cfg.seeds:
        member_cfg = with_seed(cfg, seed, out / f"seed-{seed}")
        done = _finished_member(member_cfg) if not overwrite else None
        members.append(
            done or _run_single(member_cfg, progress, stop_after, overwrite, cache_progress)
        )
    save_config(cfg, out / "config.yaml")
    summary = _auc_summary([m.frame_auc for m in members])
    _write_json(
        out / "run.json",
        {
            "wsvad_version": __version__,
            "kind": "multi-seed",
            "seeds": list(cfg.seeds),
            "runs": [
                {
                    "seed": m.seed,
                    "dir": m.run_dir.name,
                    "frame_auc": m.frame_auc,
                    "steps": m.steps,
                    "collapse": m.collapse,
                }
                for m in members
            ],
            "frame_auc": summary,
            "model_selection": cfg.selection.mode,
            "warning": TEST_SELECTION_WARNING if cfg.selection.mode == "test-best" else None,
            "status": "complete" if all(m.finished for m in members) else "partial",
        },
    )
    first = members[0]
    return TrainResult(
        out,
        cfg.seed,
        first.steps,
        all(m.finished for m in members),
        summary["mean"],
        cfg.selection.mode,
        None,
        first.report,
        sum(m.seconds for m in members),
        members,
    )


def _finished_member(cfg: TrainConfig) -> TrainResult | None:
    """A seed of a multi-seed run that already finished (so re-running the command resumes the rest)."""
    path = Path(cfg.out) / "run.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("status") != "complete":
        return None
    return TrainResult(
        Path(cfg.out),
        cfg.seed,
        data["steps"],
        True,
        data.get("quick_frame_auc"),
        data["model_selection"],
        data.get("selected_step"),
        collapse=data.get("collapse"),
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from wsvad.detectors.checkpoint import write_json

    write_json(path, data)


def _prepare_out(cfg: TrainConfig, overwrite: bool) -> None:
    out = Path(cfg.out)
    run_json = out / "run.json"
    if out.exists() and overwrite:
        shutil.rmtree(out)
    elif run_json.is_file() and json.loads(run_json.read_text()).get("status") == "complete":
        raise WsvadError(f"{out}: holds a finished run; choose another --out or pass --overwrite")
    elif (out / "config.yaml").is_file():
        old = yaml.safe_load((out / "config.yaml").read_text()) or {}
        new = config_to_json(cfg)
        diff = [
            k
            for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k) and k not in _RESUMABLE_CHANGES
        ]
        if diff:
            raise WsvadError(
                f"{out}: an unfinished run with a different config is there (differs in {', '.join(diff)}); "
                "run the same command to resume it, or pass --overwrite"
            )
    elif out.exists() and any(out.iterdir()):
        raise WsvadError(f"{out}: exists and is not a wsvad run directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)


def _run_single(
    cfg: TrainConfig, progress, stop_after: int | None, overwrite: bool, cache_progress=None
) -> TrainResult:
    import torch

    from wsvad.detectors import build_detector, detector_class
    from wsvad.detectors.checkpoint import read_pair, save_detector
    from wsvad.train.cache import ensure_bag_cache, load_bags, store_fingerprint
    from wsvad.train.data import (
        BagVideos,
        SnippetVideos,
        carve_validation,
        check_training_set,
        load_video_infos,
    )
    from wsvad.train.loop import seed_everything, train_loop
    from wsvad.train.samplers import build_sampler, sampler_needs
    from wsvad.train.scoring import (
        collapse_warning,
        quick_frame_auc,
        save_scores,
        score_split,
        validation_auc,
    )

    try:
        cls = detector_class(cfg.detector.name)
    except KeyError as exc:
        raise WsvadError(f"--detector: {exc.args[0]}") from exc
    cfg = resolve(cfg, cls.train_defaults)
    if cfg.bags.rule == "sultani" and cfg.score_on == "snippets":
        log.warning(
            "bags are L2-normalised (sultani rule) but test snippets are scored raw; consider score_on: bags"
        )
    store = FeatureStore.open(cfg.store)
    feature_shape = store.feature_shape
    if len(feature_shape) != cls.feature_ndim:
        raise WsvadError(
            f"{store.path}: detector {cfg.detector.name!r} needs {cls.feature_ndim}-D per-snippet features, "
            f"the store has feature_shape {list(feature_shape)}"
        )
    out = Path(cfg.out)
    _prepare_out(cfg, overwrite)
    save_config(cfg, out / "config.yaml")

    infos, class_names, report = load_video_infos(store, cfg.dataset, cfg.root)
    needs = sampler_needs(cls.sampler)
    check_training_set(infos, store.path, needs_both=cls.sampler == "balanced")
    train = [v for v in infos if v.split == "train"]
    test = [v for v in infos if v.split == "test"]
    val = []
    if cfg.selection.mode == "val":
        train, val = carve_validation(train, cfg.selection.val_fraction, cfg.seed)
        if len({v.label for v in val}) < 2:
            raise WsvadError(
                f"{store.path}: selection 'val' needs normal and abnormal training videos to hold out "
                f"(got {len(val)} held-out videos)"
            )
    if cfg.selection.mode == "test-best" and not any(v.intervals for v in test):
        raise WsvadError(
            f"{store.path}: selection 'test-best' needs test videos with frame intervals"
        )

    cache = None
    if needs == "bags" or val:
        cache = ensure_bag_cache(
            store,
            cfg.bags.rule,
            cfg.bags.pool,
            cfg.bags.count,
            cfg.bags.dtype,
            fallback_dir=out / "bag-cache",
            progress=cache_progress,
        )
    if needs == "bags":
        videos = BagVideos(load_bags(cache, [v.video_id for v in train], cfg.crop_mode), train)
    else:
        videos = SnippetVideos(store, train, cfg.crop_mode)

    seed_everything(cfg.seed)
    try:
        detector = build_detector(
            cfg.detector.name, feature_shape, cfg.detector.params, n_classes=len(class_names)
        ).to(cfg.device)
    except ValueError as exc:  # bad detector params or a feature shape the detector cannot take
        raise WsvadError(str(exc)) from exc
    sampler = build_sampler(cls.sampler, videos, cfg.sampler, cfg.seed)
    total = cfg.iterations if cfg.iterations is not None else cfg.epochs * sampler.steps_per_epoch
    attrs = store.attrs
    snippet_len, stride = int(attrs.get("snippet_len") or 16), int(attrs.get("stride") or 16)
    model_meta = {
        "class_names": class_names,
        "store": str(store.path),
        "store_fingerprint": store_fingerprint(store),
        "seed": cfg.seed,
        "selection": cfg.selection.mode,
        "wsvad_version": __version__,
    }

    evaluate = None
    if cfg.selection.mode == "val":
        val_videos = BagVideos(load_bags(cache, [v.video_id for v in val], cfg.crop_mode), val)

        def evaluate(det) -> float:
            return validation_auc(det, val_videos, cfg.device)
    elif cfg.selection.mode == "test-best":

        def evaluate(det) -> float:
            return (
                quick_frame_auc(score_split(det, store, test, cfg), test, snippet_len, stride)
                or 0.0
            )

    result = train_loop(
        detector, sampler, cfg, out, total, model_meta, evaluate, progress, stop_after
    )
    if not result.finished:
        return TrainResult(
            out,
            cfg.seed,
            result.steps,
            False,
            None,
            cfg.selection.mode,
            None,
            report,
            result.seconds,
        )

    selected_step = result.steps
    if cfg.selection.mode != "last" and result.best_step is not None:
        tensors, _ = read_pair(out / "checkpoints" / "best")
        detector.load_state_dict(tensors)
        selected_step = result.best_step
    save_detector(
        out / "model",
        detector,
        {**model_meta, "step": selected_step, "selection_score": result.best_score},
    )
    scores = score_split(detector, store, test, cfg)
    save_scores(out / "scores.npz", scores)
    auc = quick_frame_auc(scores, test, snippet_len, stride)
    collapse = collapse_warning(scores)  # reported with the AUC by the CLI and kept in run.json
    warnings = [TEST_SELECTION_WARNING] if cfg.selection.mode == "test-best" else []
    _write_json(
        out / "run.json",
        {
            "wsvad_version": __version__,
            "kind": "single",
            "store": str(store.path),
            "store_fingerprint": model_meta["store_fingerprint"],
            "dataset": cfg.dataset or attrs.get("dataset"),
            "root": None if cfg.root is None else str(cfg.root),
            "labels_from": report.source,
            "detector": cfg.detector.name,
            "seed": cfg.seed,
            "feature_shape": list(feature_shape),
            "class_names": class_names,
            "bag_rule": cfg.bags.rule,
            "bag_pool": cfg.bags.pool,
            "T": cfg.bags.count,
            "crop_mode": cfg.crop_mode,
            "score_on": cfg.score_on,
            "snippet_len": snippet_len,
            "stride": stride,
            "tail": attrs.get("tail"),
            "model_selection": cfg.selection.mode,
            "selected_step": selected_step,
            "selection_score": result.best_score,
            "warning": "; ".join(warnings + [collapse] if collapse else warnings) or None,
            "steps": result.steps,
            "n_train": len(train),
            "n_val": len(val),
            "n_test": len(test),
            "quick_frame_auc": auc,
            "collapse": collapse,
            "unmatched": {
                "not_in_dataset": report.not_in_dataset,
                "not_in_store": report.not_in_store,
                "unlabelled": report.unlabelled,
            },
            "torch_version": torch.__version__,
            "status": "complete",
        },
    )
    return TrainResult(
        out,
        cfg.seed,
        result.steps,
        True,
        auc,
        cfg.selection.mode,
        selected_step,
        report,
        result.seconds,
        collapse=collapse,
    )
