"""Scoring inside the train stage: the test split (-> scores.npz), the quick frame AUC printed at
the end of training, and the validation score used for model selection. The full evaluation (AP,
per-class, plots, published alignment rules) is ``wsvad evaluate``; this is the minimum."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wsvad.atomic import atomic_path
from wsvad.detectors.base import Detector
from wsvad.pipeline.store import FeatureStore
from wsvad.scoring.recipe import BaggedStore, ScoringRecipe, fit_feature_norm
from wsvad.scoring.score import score_features
from wsvad.train.config import TrainConfig
from wsvad.train.data import BagVideos, VideoInfo


def scoring_recipe(
    cfg: TrainConfig, store: FeatureStore, train: list[VideoInfo] | None = None
) -> ScoringRecipe:
    """The recipe the run's test scores are made with (resolved ``cfg``), recorded in
    ``model.json`` and ``run.json`` so that ``wsvad score`` and evaluate repeat it exactly.

    A ``feature_norm`` other than ``none`` is fitted on the ``train`` videos (one pass over their
    stored features), never on test videos."""
    bagged = store.attrs.get("bagged")
    if cfg.feature_norm != "none" and not train:
        raise ValueError(f"feature_norm {cfg.feature_norm!r} needs the training videos to fit")
    videos = (store.read(v.video_id) for v in train or [])
    return ScoringRecipe(
        crop_mode=cfg.crop_mode,
        score_on=cfg.score_on,
        bag_rule=cfg.bags.rule,
        bag_pool=cfg.bags.pool,
        bag_count=cfg.bags.count,
        bagged=BaggedStore(rule=bagged["rule"], T=int(bagged["T"])) if bagged else None,
        feature_norm=fit_feature_norm(cfg.feature_norm, videos, cfg.crop_mode),
    )


def score_split(
    detector: Detector, store: FeatureStore, infos: list[VideoInfo], recipe: ScoringRecipe
) -> dict[str, np.ndarray]:
    """Snippet scores of every video in ``infos`` (read one at a time from the store), made by
    :func:`wsvad.scoring.score.score_features`, the function every other scorer calls."""
    raw_count = store.attrs.get("bagged") is not None
    return {
        v.video_id: score_features(
            detector,
            recipe,
            store.read(v.video_id),
            store.video_attrs(v.video_id).get("n_snippets_raw") if raw_count else None,
        )
        for v in infos
    }


def save_scores(path: Path, scores: dict[str, np.ndarray]) -> None:
    """``scores.npz``: one float32 ``[N]`` array per video id (atomic write)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{vid: np.asarray(s, dtype=np.float32) for vid, s in scores.items()})


COLLAPSE_SPREAD = 1e-4


def collapse_warning(scores: dict[str, np.ndarray], spread: float = COLLAPSE_SPREAD) -> str | None:
    """A message when every test score is (nearly) the same value: training collapsed, usually a
    saturated sigmoid (learning rate too high for the detector), and any AUC is then noise."""
    if not scores:
        return None
    values = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in scores.values()])
    if values.size == 0 or float(values.max() - values.min()) >= spread:
        return None
    return (
        f"training collapsed: every test score is {float(values.mean()):.4g} "
        f"(spread {float(values.max() - values.min()):.1e} over {values.size} scores), "
        "so the AUC is meaningless; lower optim.lr or check the features"
    )


def quick_frame_auc(
    scores: dict[str, np.ndarray], infos: list[VideoInfo], snippet_len: int, stride: int
) -> float | None:
    """Frame-level ROC AUC over the videos that have intervals and a frame count (``None`` if the
    ground truth is missing or has one class only). Alignment: wsvad's ``true-frames`` rule."""
    from sklearn.metrics import roc_auc_score

    from wsvad.data.groundtruth import frame_labels, snippet_scores_to_frames

    gts, frames = [], []
    for v in infos:
        if v.intervals is None or not v.n_frames or v.video_id not in scores:
            continue
        gt = frame_labels(v.intervals, int(v.n_frames), v.video_id)
        fs, _ = snippet_scores_to_frames(scores[v.video_id], int(v.n_frames), snippet_len, stride)
        gts.append(gt)
        frames.append(fs)
    if not gts:
        return None
    gt_all = np.concatenate(gts)
    if gt_all.min() == gt_all.max():
        return None
    return float(roc_auc_score(gt_all, np.concatenate(frames)))


@torch.no_grad()
def validation_auc(detector: Detector, val: BagVideos, device: str = "cpu") -> float:
    """Video-level ROC AUC of each held-out video's max bag score (crop-averaged bag scores).

    With video labels only, this is the one selection signal that needs no frame annotation: an
    abnormal video should contain a bag scoring above every bag of a normal video.
    """
    from sklearn.metrics import roc_auc_score

    v, t, k = val.array.shape[:3]
    feats = torch.from_numpy(
        np.ascontiguousarray(np.moveaxis(val.array, 2, 1), dtype=np.float32)
    )  # (V, K, T, *F)
    scores = (
        detector(feats.reshape(v * k, t, *feats.shape[3:]).to(device)).reshape(v, k, t).mean(1)
    )  # (V, T)
    return float(roc_auc_score(val.labels.numpy(), scores.max(dim=1).values.cpu().numpy()))
