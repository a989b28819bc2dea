"""``run_train(cfg)``: store -> bag cache -> detector training -> RUN/ (see docs/architecture.md).

One seed (``_run_single``) reads top to bottom: resolve the config against the detector's paper
settings, open the store, prepare the run directory, gather the training data, build the detector,
train, then keep the selected weights, score the test split and write ``run.json``. Several seeds
are one such run per seed under ``out/seed-<k>/`` plus a ``run.json`` listing them.

Modules that import torch are imported inside the functions, so that importing ``wsvad.train``
(for its config) does not import torch.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from wsvad import __version__, locks
from wsvad.config import config_to_json, save_config
from wsvad.errors import WsvadError
from wsvad.pipeline.store import FeatureStore
from wsvad.runs import mean_std, training_warning
from wsvad.train.config import TrainConfig, resolve, with_seed
from wsvad.train.data import LabelReport, VideoInfo
from wsvad.train.record import Outcome, multi_seed_run_json, single_run_json, snippet_geometry

if TYPE_CHECKING:  # these import torch
    from wsvad.detectors.base import Detector
    from wsvad.scoring.recipe import ScoringRecipe
    from wsvad.train.loop import LoopResult

log = logging.getLogger(__name__)

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
        return training_warning(self.selection, [m.collapse for m in self.members or [self]])


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
    # RUN/.lock: a second train into RUN, or an evaluate of RUN, is refused naming this process
    with locks.holding(Path(cfg.out), "training into this run directory"):
        if not cfg.seeds:
            return _run_single(cfg, progress, stop_after, overwrite, cache_progress)
        return _run_seeds(cfg, progress, stop_after, overwrite, cache_progress)


def _run_seeds(
    cfg: TrainConfig, progress, stop_after: int | None, overwrite: bool, cache_progress
) -> TrainResult:
    out = Path(cfg.out)
    members = []
    for seed in cfg.seeds:
        member_cfg = with_seed(cfg, seed, out / f"seed-{seed}")
        done = _finished_member(member_cfg) if not overwrite else None
        members.append(
            done or _run_single(member_cfg, progress, stop_after, overwrite, cache_progress)
        )
    save_config(cfg, out / "config.yaml")
    summary = mean_std(m.frame_auc for m in members)
    _write_json(out / "run.json", multi_seed_run_json(cfg, members, summary))
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
    """A seed of a multi-seed run that already finished (so re-running the command resumes the
    rest)."""
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


# ---------------------------------------------------------------------------- one seed
def _run_single(
    cfg: TrainConfig, progress, stop_after: int | None, overwrite: bool, cache_progress=None
) -> TrainResult:
    """Train one seed into ``cfg.out`` (arguments as for :func:`run_train`)."""
    from wsvad.train.loop import train_loop
    from wsvad.train.samplers import build_sampler

    cls = _detector_class(cfg.detector.name)
    cfg = _crops_inside(resolve(cfg, cls.train_defaults))
    _warn_about_scoring(cfg)
    store = _open_store(cfg, cls)
    out = Path(cfg.out)
    _prepare_out(cfg, overwrite)
    save_config(cfg, out / "config.yaml")

    data = _training_data(cfg, cls, store, cache_progress)
    detector = _seeded_detector(cfg, _detector_shape(cfg, store), len(data.class_names))
    sampler = build_sampler(cls.sampler, data.videos, cfg.sampler, cfg.seed)
    total = cfg.iterations if cfg.iterations is not None else cfg.epochs * sampler.steps_per_epoch
    if progress is not None:  # the length before it starts, in epochs (`wsvad train` prints it)
        progress(0, total, {"epochs": total / sampler.steps_per_epoch})
    model_meta = _model_meta(cfg, store, data)
    evaluate = _selection_score(cfg, store, data)
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
            data.report,
            result.seconds,
        )
    return _finish(cfg, store, data, detector, model_meta, result)


def _finish(
    cfg: TrainConfig,
    store: FeatureStore,
    data: _TrainingData,
    detector: Detector,
    model_meta: dict[str, Any],
    result: LoopResult,
) -> TrainResult:
    """After the last step: save the selected weights as ``model.*``, score the test split into
    ``scores.npz`` and record the run in ``run.json``."""
    from wsvad.detectors.checkpoint import save_detector
    from wsvad.train.scoring import collapse_warning, quick_frame_auc, save_scores, score_split

    out = Path(cfg.out)
    selected_step = _load_selected_weights(detector, out, result, cfg.selection.mode)
    save_detector(
        out / "model",
        detector,
        {**model_meta, "step": selected_step, "selection_score": result.best_score},
    )
    scores = score_split(detector, store, data.test, data.recipe)
    save_scores(out / "scores.npz", scores)
    auc = quick_frame_auc(scores, data.test, *snippet_geometry(store))
    collapse = collapse_warning(scores)  # reported with the AUC by the CLI and kept in run.json
    outcome = Outcome(result.steps, selected_step, result.best_score, auc, collapse)
    _write_json(out / "run.json", single_run_json(cfg, store, data, model_meta, outcome))
    return TrainResult(
        out,
        cfg.seed,
        result.steps,
        True,
        auc,
        cfg.selection.mode,
        selected_step,
        data.report,
        result.seconds,
        collapse=collapse,
    )


def _detector_class(name: str):
    from wsvad.detectors import detector_class

    try:
        return detector_class(name)
    except WsvadError as exc:
        raise WsvadError(f"--detector: {exc}") from exc


def _crops_inside(cfg: TrainConfig) -> TrainConfig:
    """``crop_mode: inside`` is the detector's ``crops_inside`` param (rtfm): set it; refuse a
    detector without one, or a ``crops_inside`` that contradicts the crop mode."""
    from wsvad.detectors.registry import detector_params_model

    name, inside = cfg.detector.name, cfg.crop_mode == "inside"
    given = cfg.detector.params.get("crops_inside")
    if "crops_inside" not in detector_params_model(name).model_fields:
        if inside:
            raise WsvadError(
                f"crop_mode inside: detector {name!r} scores one crop at a time; only detectors "
                "with a crops_inside param (rtfm) take every crop in one sample"
            )
        return cfg
    if given is not None and bool(given) != inside:
        raise WsvadError(
            f"detector.params.crops_inside={given} contradicts crop_mode {cfg.crop_mode}; "
            "set crop_mode: inside for crops inside a sample, and leave crops_inside unset"
        )
    if not inside:
        return cfg
    params = {**cfg.detector.params, "crops_inside": True}
    return cfg.model_copy(update={"detector": cfg.detector.model_copy(update={"params": params})})


def _detector_shape(cfg: TrainConfig, store: FeatureStore) -> tuple[int, ...]:
    """The detector's ``F``: the store's, or ``(C, *F)`` with every crop inside a sample."""
    inside = cfg.crop_mode == "inside"
    return (store.crops, *store.feature_shape) if inside else tuple(store.feature_shape)


def _warn_about_scoring(cfg: TrainConfig) -> None:
    if cfg.bags.rule == "sultani" and cfg.score_on == "snippets":
        log.warning(
            "bags are L2-normalised (sultani rule) but test snippets are scored raw; "
            "consider score_on: bags"
        )


def _open_store(cfg: TrainConfig, cls) -> FeatureStore:
    """The feature store, refused when its per-snippet features have the wrong rank for ``cls``."""
    store = FeatureStore.open(cfg.store)
    if len(store.feature_shape) != cls.feature_ndim:
        raise WsvadError(
            f"{store.path}: detector {cfg.detector.name!r} needs {cls.feature_ndim}-D per-snippet "
            f"features, the store has feature_shape {list(store.feature_shape)}"
        )
    return store


def _prepare_out(cfg: TrainConfig, overwrite: bool) -> None:
    out = Path(cfg.out)
    run_json = out / "run.json"
    if out.exists() and overwrite:
        for child in (c for c in out.iterdir() if c.name != locks.LOCK):  # keep our lock
            shutil.rmtree(child) if child.is_dir() else child.unlink()
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
                f"{out}: an unfinished run with a different config is there (differs in "
                f"{', '.join(diff)}); run the same command to resume it, or pass --overwrite"
            )
    elif out.exists() and any(c.name != locks.LOCK for c in out.iterdir()):
        raise WsvadError(f"{out}: exists and is not a wsvad run directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)


@dataclass
class _TrainingData:
    """The labelled videos of one run, split, and the video sets the sampler and selection use."""

    train: list[VideoInfo]
    val: list[VideoInfo]  # held out for selection "val", else empty
    test: list[VideoInfo]
    class_names: list[str]
    report: LabelReport
    videos: Any  # BagVideos or SnippetVideos of ``train``: what the sampler draws from
    val_videos: Any  # BagVideos of ``val`` (selection "val"), else None
    recipe: ScoringRecipe  # how the test videos are scored (recorded in model.json, run.json)


def _training_data(cfg: TrainConfig, cls, store: FeatureStore, cache_progress) -> _TrainingData:
    """Label the store's videos, split them (train, held-out val, test) and load what the
    detector's sampler draws from: cached bags, or raw snippets read lazily."""
    from wsvad.train.cache import ensure_bag_cache, load_bags
    from wsvad.train.data import BagVideos, SnippetVideos, check_training_set, load_video_infos
    from wsvad.train.samplers import sampler_needs
    from wsvad.train.scoring import scoring_recipe

    infos, class_names, report = load_video_infos(store, cfg.dataset, cfg.root)
    needs = sampler_needs(cls.sampler)
    check_training_set(infos, store.path, needs_both=cls.sampler == "balanced")
    train, val, test = _split(cfg, infos, store.path)
    # Training inputs are prepared by the recipe test videos are scored with.
    recipe = scoring_recipe(cfg, store, train)
    cache = None
    if needs == "bags" or val:
        cache = ensure_bag_cache(
            store,
            cfg.bags.rule,
            cfg.bags.pool,
            cfg.bags.count,
            cfg.bags.dtype,
            fallback_dir=Path(cfg.out) / "bag-cache",
            progress=cache_progress,
            recipe=recipe,
        )
    if needs == "bags":
        videos = BagVideos(load_bags(cache, [v.video_id for v in train], cfg.crop_mode), train)
    else:
        videos = SnippetVideos(store, train, recipe)
    val_videos = None
    if cfg.selection.mode == "val":
        val_videos = BagVideos(load_bags(cache, [v.video_id for v in val], cfg.crop_mode), val)
    return _TrainingData(train, val, test, class_names, report, videos, val_videos, recipe)


def _split(
    cfg: TrainConfig, infos: list[VideoInfo], store_path: Path
) -> tuple[list[VideoInfo], list[VideoInfo], list[VideoInfo]]:
    """``(train, val, test)``: val is carved out of train for selection "val", else empty; refuses
    a selection mode the videos cannot support."""
    from wsvad.train.data import carve_validation

    train = [v for v in infos if v.split == "train"]
    test = [v for v in infos if v.split == "test"]
    val = []
    if cfg.selection.mode == "val":
        train, val = carve_validation(train, cfg.selection.val_fraction, cfg.seed)
        if len({v.label for v in val}) < 2:
            raise WsvadError(
                f"{store_path}: selection 'val' needs normal and abnormal training videos to hold "
                f"out (got {len(val)} held-out videos)"
            )
    if cfg.selection.mode == "test-best" and not any(v.intervals for v in test):
        raise WsvadError(
            f"{store_path}: selection 'test-best' needs test videos with frame intervals"
        )
    return train, val, test


def _seeded_detector(cfg: TrainConfig, feature_shape: tuple[int, ...], n_classes: int) -> Detector:
    """The detector on ``cfg.device``, its weights initialised right after seeding every RNG."""
    from wsvad.detectors import build_detector
    from wsvad.train.loop import seed_everything

    seed_everything(cfg.seed)
    try:
        return build_detector(
            cfg.detector.name, feature_shape, cfg.detector.params, n_classes=n_classes
        ).to(cfg.device)
    except ValueError as exc:  # bad detector params or a feature shape the detector cannot take
        raise WsvadError(str(exc)) from exc


def _model_meta(cfg: TrainConfig, store: FeatureStore, data: _TrainingData) -> dict[str, Any]:
    """What every saved model (``model.json``, ``checkpoints/best.json``) records besides its
    build spec, the scoring recipe included."""
    from wsvad.train.cache import store_fingerprint

    return {
        "class_names": data.class_names,
        "scoring": data.recipe.to_json(),
        "store": str(store.path),
        "store_fingerprint": store_fingerprint(store),
        "seed": cfg.seed,
        "selection": cfg.selection.mode,
        "wsvad_version": __version__,
    }


def _selection_score(cfg: TrainConfig, store: FeatureStore, data: _TrainingData):
    """The model-selection score the loop maximises (``None`` for selection "last"): the held-out
    videos' video-level AUC ("val") or the test split's quick frame AUC ("test-best")."""
    from wsvad.train.scoring import quick_frame_auc, score_split, validation_auc

    if cfg.selection.mode == "val":

        def evaluate(det) -> float:
            return validation_auc(det, data.val_videos, cfg.device)

        return evaluate
    if cfg.selection.mode == "test-best":
        snippet_len, stride = snippet_geometry(store)

        def evaluate(det) -> float:
            scores = score_split(det, store, data.test, data.recipe)
            return quick_frame_auc(scores, data.test, snippet_len, stride) or 0.0

        return evaluate
    return None


def _load_selected_weights(
    detector: Detector, out: Path, result: LoopResult, selection: str
) -> int:
    """Load the selected weights into ``detector`` (the best checkpoint unless selection is
    "last"); returns the step they were taken at."""
    from wsvad.detectors.checkpoint import read_pair

    if selection == "last" or result.best_step is None:
        return result.steps
    tensors, _ = read_pair(out / "checkpoints" / "best")
    detector.load_state_dict(tensors)
    return result.best_step
