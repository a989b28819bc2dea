"""Training data: video labels (from the store or a dataset adapter), the validation carve-out,
and the two views samplers draw from (cached bags in memory, raw snippets read lazily from the
store)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsvad.errors import WsvadError
from wsvad.pipeline.store import FeatureStore
from wsvad.scoring.recipe import ScoringRecipe, prepare_snippets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What training and scoring need to know about one video of the store."""

    video_id: str
    split: str
    label: int
    class_index: int  # 0 Normal; multi-class videos (XD) use their first listed class
    intervals: tuple[tuple[int, int], ...] | None
    n_snippets: int
    n_frames: int | None


@dataclass
class LabelReport:
    """Ids that could not be matched between the store and the label source."""

    source: str  # "store attrs" or "dataset <name> at <root>"
    not_in_dataset: list[str] = field(default_factory=list)  # in the store, unknown to the adapter
    not_in_store: list[str] = field(default_factory=list)  # listed by the adapter, not extracted
    unlabelled: list[str] = field(default_factory=list)  # store videos without split/label attrs

    @property
    def clean(self) -> bool:
        return not (self.not_in_dataset or self.not_in_store or self.unlabelled)


def _class_index(
    classes: list[str] | tuple[str, ...], label: int, class_names: list[str], where: str
) -> int:
    if not label or not classes:
        return 0
    if classes[0] not in class_names:
        raise WsvadError(
            f"{where}: class {classes[0]!r} is not among the class names {class_names}"
        )
    return class_names.index(classes[0])


def load_video_infos(
    store: FeatureStore, dataset: str | None = None, root: Path | None = None
) -> tuple[list[VideoInfo], list[str], LabelReport]:
    """Label every complete video of ``store``.

    Labels come from the per-video attrs written by extract, or, when ``dataset``/``root`` are
    given, from that dataset adapter matched by video id. ``class_names`` come from the adapter, or
    are ``["Normal"]`` plus the sorted classes found in the store attrs.

    Returns:
        (infos of the labelled videos sorted by id, class_names, report of unmatched ids).
    """
    ids = store.video_ids()
    attrs = {vid: store.video_attrs(vid) for vid in ids}
    if dataset is not None:
        infos, class_names, report = _labels_from_dataset(store, attrs, dataset, root)
    else:
        infos, class_names, report = _labels_from_store(store, attrs)
    if not report.clean:
        log.warning(
            "label matching (%s): %d store videos not in the dataset, "
            "%d dataset videos not in the store, %d unlabelled",
            report.source,
            len(report.not_in_dataset),
            len(report.not_in_store),
            len(report.unlabelled),
        )
    return infos, class_names, report


def _labels_from_dataset(
    store: FeatureStore, attrs: dict[str, dict], dataset: str, root: Path | None
) -> tuple[list[VideoInfo], list[str], LabelReport]:
    """Labels of the store's videos (``attrs``: id -> video attrs) from a dataset adapter."""
    from wsvad.data import load_dataset
    from wsvad.data.check import load_labels_only

    # Published features come without their videos: the lists and annotations are the labels.
    imported = store.provenance_kind == "imported"
    index = load_labels_only(dataset, root) if imported else load_dataset(dataset, root)
    class_names = list(index.class_names)
    records = index.by_id()
    report = LabelReport(source=f"dataset {dataset} at {root}")
    report.not_in_dataset = [vid for vid in attrs if vid not in records]
    report.not_in_store = sorted(set(records) - set(attrs))
    infos = []
    for vid, a in attrs.items():
        rec = records.get(vid)
        if rec is None:
            continue
        intervals = None if rec.intervals is None else tuple(tuple(iv) for iv in rec.intervals)
        ci = _class_index(rec.classes, rec.label, class_names, f"{dataset} video {vid}")
        infos.append(
            VideoInfo(
                vid,
                rec.split,
                int(rec.label),
                ci,
                intervals,
                int(a["n_snippets"]),
                a.get("n_frames"),
            )
        )
    return infos, class_names, report


def _labels_from_store(
    store: FeatureStore, attrs: dict[str, dict]
) -> tuple[list[VideoInfo], list[str], LabelReport]:
    """Labels of the store's videos (``attrs``: id -> video attrs) from those attrs."""
    report = LabelReport(source="store attrs")
    found = sorted({c for a in attrs.values() for c in (a.get("classes") or [])})
    class_names = ["Normal", *[c for c in found if c != "Normal"]]
    infos = []
    for vid, a in attrs.items():
        if a.get("split") not in ("train", "test") or a.get("label") not in (0, 1):
            report.unlabelled.append(vid)
            continue
        ci = _class_index(
            a.get("classes") or [], a["label"], class_names, f"{store.path} video {vid}"
        )
        raw = a.get("intervals")
        intervals = None if raw is None else tuple((int(s), int(e)) for s, e in raw)
        infos.append(
            VideoInfo(
                vid,
                a["split"],
                int(a["label"]),
                ci,
                intervals,
                int(a["n_snippets"]),
                a.get("n_frames"),
            )
        )
    return infos, class_names, report


def check_training_set(infos: list[VideoInfo], store: Path, needs_both: bool) -> None:
    """Refuse a training split the sampler cannot draw from, naming what is missing."""
    labels = [v.label for v in infos if v.split == "train"]
    if not labels:
        raise WsvadError(
            f"{store}: no labelled training video (split 'train'); "
            "give --dataset/--root or re-extract with labels"
        )
    if needs_both and (0 not in labels or 1 not in labels):
        have = "normal" if 0 in labels else "abnormal"
        raise WsvadError(
            f"{store}: the training split has only {have} videos; the balanced sampler needs both"
        )


def carve_validation(
    train: list[VideoInfo], fraction: float, seed: int
) -> tuple[list[VideoInfo], list[VideoInfo]]:
    """Hold out ``fraction`` of the training videos per label (stratified, at least one of each
    label that has two or more videos). Returns (train, val), both sorted by id."""
    # A stream of its own: changing it never moves the sampler.
    rng = np.random.default_rng([seed, 7919])
    held: set[str] = set()
    for label in (0, 1):
        ids = sorted(v.video_id for v in train if v.label == label)
        if len(ids) < 2:
            continue
        n = min(len(ids) - 1, max(1, round(fraction * len(ids))))
        held.update(rng.permutation(ids)[:n].tolist())
    return [v for v in train if v.video_id not in held], [v for v in train if v.video_id in held]


class BagVideos:
    """Cached bags in memory, ``array`` ``(V, T, K, *F)``; a ``detectors.base.TrainVideos``."""

    def __init__(self, array: np.ndarray, infos: list[VideoInfo]):
        import torch

        self.array = array
        self.infos = infos
        self.labels = torch.tensor([v.label for v in infos], dtype=torch.float32)
        self.class_index = np.array([v.class_index for v in infos], dtype=np.int64)
        self.lengths = np.full(len(infos), array.shape[1], dtype=np.int64)
        self.n_crops = array.shape[2]

    def __len__(self) -> int:
        return len(self.infos)

    def __getitem__(self, index: int):
        import torch

        # (T, K, *F) -> (K, T, *F)
        return torch.from_numpy(
            np.ascontiguousarray(np.moveaxis(self.array[index], 1, 0), dtype=np.float32)
        )

    def window(self, index: int, crop: int, start: int, length: int) -> np.ndarray:
        return self.array[index, start : start + length, crop].astype(np.float32)


class SnippetVideos:
    """Raw snippet features read lazily from the store (never all in memory), prepared by the
    run's scoring recipe (crops averaged or kept, as test videos are); TrainVideos too."""

    def __init__(self, store: FeatureStore, infos: list[VideoInfo], recipe: ScoringRecipe):
        import torch

        self.store = store
        self.infos = infos
        self.recipe = recipe
        self.labels = torch.tensor([v.label for v in infos], dtype=torch.float32)
        self.class_index = np.array([v.class_index for v in infos], dtype=np.int64)
        self.lengths = np.array([v.n_snippets for v in infos], dtype=np.int64)
        self.n_crops = store.crops if recipe.crop_mode == "separate" else 1
        self._arrays: dict[int, object] = {}

    def __len__(self) -> int:
        return len(self.infos)

    def _array(self, index: int):
        if index not in self._arrays:
            self._arrays[index] = self.store.array(self.infos[index].video_id)
        return self._arrays[index]

    def __getitem__(self, index: int):
        import torch

        x = prepare_snippets(self.recipe, self._array(index)[...])  # (N, K, *F)
        if self.recipe.crop_mode == "inside":
            return torch.from_numpy(x[None])  # (1, N, C, *F): a sample holds every crop
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, 1, 0)))  # (K, N, *F)

    def window(self, index: int, crop: int, start: int, length: int) -> np.ndarray:
        """``(<= length, *F)`` snippets of one sample (``(<= length, C, *F)`` with crops inside)."""
        arr = self._array(index)
        if self.recipe.crop_mode == "separate":
            x = prepare_snippets(self.recipe, arr[start : start + length, crop : crop + 1])
        else:  # every crop is read: averaged, or all inside the sample
            x = prepare_snippets(self.recipe, arr[start : start + length])
        return x if self.recipe.crop_mode == "inside" else x[:, 0]
