"""Scoring inside the train stage: the test split (-> scores.npz), the quick frame AUC printed at
the end of training, and the validation score used for model selection. The full evaluation (AP,
per-class, plots, published alignment rules) is ``wsvad evaluate``; this is the minimum."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from wsvad.detectors.base import Detector
from wsvad.pipeline.bags import bag_scores_to_snippets, segment_into_bags
from wsvad.pipeline.store import FeatureStore
from wsvad.train.config import TrainConfig
from wsvad.train.data import BagVideos, VideoInfo


@torch.no_grad()
def score_video_crops(
    detector: Detector,
    raw: np.ndarray,
    cfg: TrainConfig,
    bagged: dict | None = None,
    n_raw: int | None = None,
) -> np.ndarray:
    """Snippet scores of one video: ``(N, C, *F)`` -> ``(N,)`` float32, scored crop by crop with
    ``detector.score_video`` and averaged over crops (the common protocol).

    With ``score_on: bags`` the video is first cut into the training bags and the bag scores are
    mapped back to the snippets they pooled (Sultani et al.'s evaluation of a bag-level model).
    A store that already holds segments (``bagged`` store attr) is scored as it is, and the segment
    scores are mapped back to its ``n_raw`` original snippets when that count is known, so that
    ``scores.npz`` always holds snippet-level scores.
    """
    if bagged:
        n = n_raw or len(raw)
        seq = raw
    else:
        n = len(raw)
        seq = (
            segment_into_bags(raw, cfg.bags.count, cfg.bags.rule, cfg.bags.pool)
            if cfg.score_on == "bags"
            else raw
        )
    per_crop = []
    for c in range(seq.shape[1]):
        crop = torch.from_numpy(np.ascontiguousarray(seq[:, c], dtype=np.float32)).to(
            cfg.device
        )  # (N or T, *F)
        per_crop.append(detector.score_video(crop).cpu().numpy())
    scores = np.mean(per_crop, axis=0)  # (C, N or T) -> (N or T,)
    if bagged:
        if n_raw:
            scores = bag_scores_to_snippets(scores, n_raw, bagged["rule"])
    elif cfg.score_on == "bags":
        scores = bag_scores_to_snippets(scores, n, cfg.bags.rule)
    return scores.astype(np.float32)


def score_split(
    detector: Detector, store: FeatureStore, infos: list[VideoInfo], cfg: TrainConfig
) -> dict[str, np.ndarray]:
    """Scores of every video in ``infos``, read one at a time from the store."""
    was_training = detector.training
    detector.eval()
    try:
        bagged = store.attrs.get("bagged")
        return {
            v.video_id: score_video_crops(
                detector,
                store.read(v.video_id),
                cfg,
                bagged,
                store.video_attrs(v.video_id).get("n_snippets_raw") if bagged else None,
            )
            for v in infos
        }
    finally:
        detector.train(was_training)


def save_scores(path: Path, scores: dict[str, np.ndarray]) -> None:
    """``scores.npz``: one float32 ``[N]`` array per video id (atomic write)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **{vid: np.asarray(s, dtype=np.float32) for vid, s in scores.items()})
    os.replace(tmp, path)


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
