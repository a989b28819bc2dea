"""What ``run.json`` records (docs/architecture.md, "Run directory"): one seed's run, or a
multi-seed run listing its seeds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wsvad import __version__
from wsvad.pipeline.store import FeatureStore
from wsvad.runs import training_warning
from wsvad.train.config import TrainConfig

if TYPE_CHECKING:
    from wsvad.train.run import TrainResult, _TrainingData


def snippet_geometry(store: FeatureStore) -> tuple[int, int]:
    """``(snippet_len, stride)`` of the store, 16 when it does not say."""
    attrs = store.attrs
    return int(attrs.get("snippet_len") or 16), int(attrs.get("stride") or 16)


def multi_seed_run_json(
    cfg: TrainConfig, members: list[TrainResult], summary: dict[str, Any]
) -> dict[str, Any]:
    """``run.json`` of a multi-seed run: the seeds' directories and figures, and their summary."""
    return {
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
        # The seeds' collapse notes are in "runs"; this is the selection warning only.
        "warning": training_warning(cfg.selection.mode),
        "status": "complete" if all(m.finished for m in members) else "partial",
    }


@dataclass(frozen=True)
class Outcome:
    """The figures of a finished single-seed run that ``run.json`` records."""

    steps: int
    selected_step: int
    selection_score: float | None
    quick_frame_auc: float | None
    collapse: str | None


def single_run_json(
    cfg: TrainConfig,
    store: FeatureStore,
    data: _TrainingData,
    model_meta: dict[str, Any],
    outcome: Outcome,
) -> dict[str, Any]:
    """``run.json`` of a finished single-seed run (docs/architecture.md, "Run directory")."""
    import torch

    snippet_len, stride = snippet_geometry(store)
    report = data.report
    return {
        "wsvad_version": __version__,
        "kind": "single",
        "store": str(store.path),
        "store_fingerprint": model_meta["store_fingerprint"],
        "dataset": cfg.dataset or store.attrs.get("dataset"),
        "root": None if cfg.root is None else str(cfg.root),
        "labels_from": report.source,
        "detector": cfg.detector.name,
        "seed": cfg.seed,
        "feature_shape": list(store.feature_shape),
        "class_names": data.class_names,
        "bag_rule": cfg.bags.rule,
        "bag_pool": cfg.bags.pool,
        "T": cfg.bags.count,
        "crop_mode": cfg.crop_mode,
        "score_on": cfg.score_on,
        "scoring": data.recipe.to_json(),
        "snippet_len": snippet_len,
        "stride": stride,
        "tail": store.attrs.get("tail"),
        "model_selection": cfg.selection.mode,
        "selected_step": outcome.selected_step,
        "selection_score": outcome.selection_score,
        "warning": training_warning(cfg.selection.mode, [outcome.collapse]),
        "steps": outcome.steps,
        "n_train": len(data.train),
        "n_val": len(data.val),
        "n_test": len(data.test),
        "quick_frame_auc": outcome.quick_frame_auc,
        "collapse": outcome.collapse,
        "unmatched": {
            "not_in_dataset": report.not_in_dataset,
            "not_in_store": report.not_in_store,
            "unlabelled": report.unlabelled,
        },
        "torch_version": torch.__version__,
        "status": "complete",
    }
