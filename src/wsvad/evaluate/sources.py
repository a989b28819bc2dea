"""Where the evaluator's inputs come from: score files, frame counts, ground truth, and matching.

Scores: an ``.npz`` with one array per video id (snippet scores; a 2-D ``(N, crops)`` array is
averaged over crops) or a CSV with the columns ``video,snippet,score``. Ground truth: the store's
per-video attrs (run mode) or the dataset adapter's test records (standalone mode). Frame counts:
the store's ``n_frames`` when a store is given, else probed from the video files (decord, PyAV
fallback, image count for frame folders) and cached by path, size and mtime.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import NamedTuple

import numpy as np

from wsvad.atomic import write_text_atomic
from wsvad.data.framecount import probe_frame_count
from wsvad.errors import WsvadError
from wsvad.evaluate.protocol import VideoTruth

log = logging.getLogger(__name__)

_SCORE_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".npy")


class MatchProblem(NamedTuple):
    """One row of the mismatch table."""

    video_id: str
    # "no scores" | "not a test video" | "no frame count" | "snippet count" | "no ground truth" |
    # "missing video" | "not in store" | "duplicate"
    kind: str
    detail: str


def load_scores(path: Path) -> dict[str, np.ndarray]:
    """Per-video snippet scores from ``.npz`` or ``.csv`` (``video,snippet,score``)."""
    path = Path(path)
    if not path.is_file():
        raise WsvadError(f"{path}: no such scores file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path)
    raise WsvadError(
        f"{path}: unknown scores format {suffix!r}; "
        "use .npz (one array per video) or .csv (video,snippet,score)"
    )


def _check_scores(path: Path, video_id: str, values: np.ndarray) -> np.ndarray:
    if values.ndim == 2:
        values = values.mean(axis=1)  # (N, crops) -> (N,): the common protocol averages crop scores
    if values.ndim != 1 or values.size == 0:
        raise WsvadError(
            f"{path}: video {video_id!r}: expected a non-empty 1-D array of snippet scores, "
            f"got shape {values.shape}"
        )
    if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
        raise WsvadError(f"{path}: video {video_id!r}: scores must be finite numbers")
    return values.astype(np.float64)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise WsvadError(f"{path}: cannot read .npz ({exc})") from exc
    if not raw:
        raise WsvadError(f"{path}: the .npz holds no arrays")
    return {key: _check_scores(path, key, value) for key, value in raw.items()}


def _load_csv(path: Path) -> dict[str, np.ndarray]:
    rows: dict[str, dict[int, float]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        needed = {"video", "snippet", "score"}
        if reader.fieldnames is None or not needed <= {f.strip() for f in reader.fieldnames}:
            raise WsvadError(
                f"{path}: a scores CSV needs the header video,snippet,score "
                f"(got {reader.fieldnames})"
            )
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            try:
                snippet, score = int(row["snippet"]), float(row["score"])
            except ValueError:
                raise WsvadError(
                    f"{path}:{line}: snippet must be an integer and score a number"
                ) from None
            per_video = rows.setdefault(row["video"], {})
            if snippet in per_video:
                raise WsvadError(
                    f"{path}:{line}: snippet {snippet} of video {row['video']!r} given twice"
                )
            per_video[snippet] = score
    if not rows:
        raise WsvadError(f"{path}: no score rows")
    out = {}
    for video_id, per_video in rows.items():
        n = len(per_video)
        if set(per_video) != set(range(n)):
            missing = sorted(set(range(max(per_video) + 1)) - set(per_video))[:5]
            raise WsvadError(
                f"{path}: video {video_id!r}: snippets must run 0..N-1 without gaps "
                f"(missing {missing})"
            )
        out[video_id] = _check_scores(path, video_id, np.array([per_video[i] for i in range(n)]))
    return out


def normalise_id(key: str) -> str:
    """A score key as a video id: no folders, no video/feature extension, no ``_i3d`` suffix.

    >>> normalise_id("Abuse/Abuse028_x264.mp4")
    'Abuse028_x264'
    >>> normalise_id("G:\\\\feats\\\\Abuse028_x264_i3d.npy")
    'Abuse028_x264'
    """
    name = key.replace("\\", "/").rsplit("/", 1)[-1]
    for ext in _SCORE_EXTENSIONS:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    name = name.removesuffix("_i3d")
    return name


def match_scores(
    scores: dict[str, np.ndarray], known_ids: Iterable[str]
) -> tuple[dict[str, np.ndarray], list[MatchProblem]]:
    """Key the scores by dataset video id (exact key first, then :func:`normalise_id`)."""
    known = set(known_ids)
    matched: dict[str, np.ndarray] = {}
    problems = []
    for key, values in scores.items():
        vid = key if key in known else normalise_id(key)
        if vid not in known:
            problems.append(
                MatchProblem(key, "not a test video", "no test video of the dataset has this id")
            )
        elif vid in matched:
            problems.append(
                MatchProblem(
                    key, "duplicate", f"a second score entry for {vid!r}; the first is used"
                )
            )
        else:
            matched[vid] = values
    return matched, problems


def check_snippet_counts(
    scores: dict[str, np.ndarray], truths: dict[str, VideoTruth], stride: int
) -> list[MatchProblem]:
    """Flag videos whose snippet count cannot belong to their frame count.

    Decoders disagree by a few frames and tail rules add or drop a snippet, so up to
    ``max(2, 5 %)`` snippets of difference from ``n_frames // stride`` is accepted.
    """
    problems = []
    for vid, values in scores.items():
        truth = truths.get(vid)
        if truth is None or truth.n_frames is None:  # T x stride frames: any T fits
            continue
        expected = max(1, truth.n_frames // stride)
        if abs(len(values) - expected) > max(2, 0.05 * expected):
            problems.append(
                MatchProblem(
                    vid,
                    "snippet count",
                    f"{len(values)} snippets for {truth.n_frames} frames "
                    f"(expected about {expected} at stride {stride})",
                )
            )
    return problems


# ---------------------------------------------------------------------------- ground truth
class StoreTruths(NamedTuple):
    """Ground truth of a store's test videos (run mode)."""

    truths: dict[str, VideoTruth]
    attrs: dict  # the store's attrs
    problems: list[MatchProblem]
    estimated: list[str]  # videos whose frame count is T x stride, not counted


def truths_from_store(
    store_path: Path, dataset: str | None = None, root: Path | str | None = None, stride: int = 16
) -> StoreTruths:
    """Test videos of a feature store (per-video attrs carry n_frames, label, classes, intervals).

    A test video stored without intervals (features imported without ``--dataset``) takes them from
    the dataset adapter when ``dataset``/``root`` are given (from the lists alone for an imported
    store); otherwise it is reported as having no ground truth and left out, never taken as all
    normal. A video without ``n_frames`` (Sultani's 32 bagged segments) gets ``T * stride``, and
    every estimated count is returned so the protocol line can state it.
    """
    from wsvad.pipeline.store import FeatureStore

    store = FeatureStore.open(store_path)
    tests = {
        vid: a
        for vid in store.video_ids()
        if (a := store.video_attrs(vid)).get("split", "test") == "test"
    }
    records = None
    if dataset is not None and root is not None:
        if any(a.get("intervals") is None for a in tests.values()):
            records = _dataset_records(store, dataset, Path(root))
    truths, problems, estimated = {}, [], []
    for vid, attrs in tests.items():
        rec = records.get(vid) if records is not None else None
        attrs = _with_dataset_annotation(attrs, rec)
        why = _why_no_ground_truth(attrs, rec, records is not None, store_path, dataset, root)
        if why is not None:
            problems.append(MatchProblem(vid, "no ground truth", why))
            continue
        if attrs.get("n_frames") is None:
            n_snippets = attrs.get("n_snippets") or store.array(vid).shape[0]
            attrs = attrs | {"n_frames": int(n_snippets) * stride}
            estimated.append(vid)
        elif attrs.get("n_frames_estimated"):
            estimated.append(vid)
        truths[vid] = _truth_from_attrs(vid, attrs)
    return StoreTruths(truths, store.attrs, problems, estimated)


def _with_dataset_annotation(attrs: dict, rec) -> dict:
    """A store video's attrs; one stored without intervals takes the label, classes and intervals
    of its test record in the dataset (and the record's frame count when the store has none)."""
    if attrs.get("intervals") is not None or rec is None:
        return attrs
    if rec.split != "test" or rec.intervals is None:
        return attrs
    attrs = attrs | {
        "label": rec.label,
        "classes": list(rec.classes),
        "intervals": [list(iv) for iv in rec.intervals],
    }
    if attrs.get("n_frames") is None and rec.n_frames is not None:
        attrs |= {"n_frames": rec.n_frames, "n_frames_estimated": False}
    return attrs


def _why_no_ground_truth(
    attrs: dict, rec, asked_dataset: bool, store_path: Path, dataset: str | None, root
) -> str | None:
    """Why a store video cannot be evaluated (no label or no frame intervals), or ``None``."""
    if attrs.get("label") not in (0, 1):
        return f"{store_path}: the store has no label or frame annotation for it"
    if attrs.get("intervals") is not None:
        return None
    if not asked_dataset:
        return (
            f"{store_path} holds no frame annotation for it (imported without --dataset?); "
            "pass --dataset and --root to take it from the dataset's lists"
        )
    if rec is None or rec.split != "test":
        return f"not a test video of the {dataset} dataset at {root}"
    return f"the {dataset} dataset has no frame annotation for it"


def _dataset_records(store, dataset: str, root: Path) -> dict:
    from wsvad.data import load_dataset
    from wsvad.data.check import load_labels_only

    if not root.is_dir():
        raise WsvadError(
            f"{root}: dataset root does not exist or is not a directory "
            f"(needed for the frame annotation of {store.path})"
        )
    imported = store.provenance_kind == "imported"
    index = load_labels_only(dataset, root) if imported else load_dataset(dataset, root)
    return index.by_id()


def frame_counts_from_store(store_path: Path, stride: int = 16) -> tuple[dict[str, int], set[str]]:
    """Frame count of every store video, and the videos whose count is an estimate: the
    import's ``n_frames_estimated``, or ``T * stride`` for a video stored without ``n_frames``
    (Sultani's bagged C3D), as run mode does."""
    from wsvad.pipeline.store import FeatureStore

    store = FeatureStore.open(store_path)
    counts, estimated = {}, set()
    for vid in store.video_ids():
        attrs = store.video_attrs(vid)
        if attrs.get("n_frames") is None:
            n_snippets = attrs.get("n_snippets") or store.array(vid).shape[0]
            counts[vid] = int(n_snippets) * stride
            estimated.add(vid)
            continue
        counts[vid] = int(attrs["n_frames"])
        if attrs.get("n_frames_estimated"):
            estimated.add(vid)
    return counts, estimated


def add_dataset_counts(
    records, counts: dict[str, int], estimated: set[str]
) -> tuple[dict[str, int], set[str]]:
    """The frame counts the dataset's own files state (SH masks, UR-DMU's UCF annotation) replace
    unknown and estimated ones."""
    counts, estimated = dict(counts), set(estimated)
    for rec in records:
        if rec.n_frames is not None and (rec.video_id not in counts or rec.video_id in estimated):
            counts[rec.video_id] = int(rec.n_frames)
            estimated.discard(rec.video_id)
    return counts, estimated


def _truth_from_attrs(vid: str, attrs: dict) -> VideoTruth:
    intervals = tuple(tuple(int(x) for x in iv) for iv in attrs["intervals"])
    return VideoTruth(
        vid,
        int(attrs["n_frames"]),
        int(attrs["label"]),
        tuple(attrs.get("classes") or ()),
        intervals,
    )


# (dataset, root) -> dataset_test_index() result, inside one evaluation only (see memoised_index)
_INDEX_MEMO: ContextVar[dict | None] = ContextVar("wsvad_eval_index_memo", default=None)


@contextmanager
def memoised_index() -> Iterator[None]:
    """Within the block, ``dataset_test_index`` reads a dataset's lists once: an evaluation needs
    them for the ground truth and again for the report's video paths (UCF-Crime's 3,800 list lines
    cost ~0.4 s to parse). Nothing is kept after the block, so a later call sees edited lists."""
    token = _INDEX_MEMO.set({})
    try:
        yield
    finally:
        _INDEX_MEMO.reset(token)


def dataset_test_index(dataset: str, root: Path) -> tuple[list, list[str], list[MatchProblem]]:
    """Every test record of the dataset (from its lists, whether or not the videos are on disk),
    its class names, and a ``missing video`` problem for each test video not on disk (the
    ``folder`` adapter's ``missing-video`` rows of labels.csv included)."""
    memo = _INDEX_MEMO.get()
    key = (dataset, str(Path(root).resolve()))
    if memo is not None and key in memo:
        records, classes, absent = memo[key]
        return list(records), list(classes), list(absent)  # copies: callers may extend them
    result = _dataset_test_index(dataset, root)
    if memo is not None:
        memo[key] = result
    return result


def _dataset_test_index(dataset: str, root: Path) -> tuple[list, list[str], list[MatchProblem]]:
    from wsvad.data.check import load_labels_only

    index = load_labels_only(dataset, root)
    records = index.split("test")
    absent = [
        MatchProblem(r.video_id, "missing video", f"{r.rel_path}: not under {root}")
        for r in records
        if not Path(r.path).exists()
    ]
    absent += [
        MatchProblem(p.video_id or p.path or "?", "missing video", p.message)
        for p in index.problems
        if p.kind == "missing-video"
    ]
    if not records and not absent:
        raise WsvadError(f"{root}: the {dataset} dataset has no test videos")
    return records, list(index.class_names), absent


def truths_from_records(
    records, frame_counts: dict[str, int | None], unknown_ok: bool = False
) -> tuple[dict[str, VideoTruth], list[MatchProblem]]:
    """Ground truth of the dataset's test records; a record without a frame count is a ``no frame
    count`` problem, or (``unknown_ok``: the authors' protocol) evaluated on ``T x stride``
    frames."""
    truths, problems = {}, []
    for rec in records:
        if rec.intervals is None or rec.label not in (0, 1):
            detail = f"{rec.rel_path}: no label or frame annotation in the dataset"
            problems.append(MatchProblem(rec.video_id, "no ground truth", detail))
            continue
        n = frame_counts.get(rec.video_id)
        if n is None and not unknown_ok:
            detail = f"{rec.rel_path}: frame count unknown (not in the store, video unreadable)"
            problems.append(MatchProblem(rec.video_id, "no frame count", detail))
            continue
        truths[rec.video_id] = VideoTruth(
            rec.video_id,
            None if n is None else int(n),
            int(rec.label),
            tuple(rec.classes),
            tuple(rec.intervals or ()),
        )
    return truths, problems


# ---------------------------------------------------------------------------- frame-count probing
def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wsvad" / "frame-counts.json"


def probe_frame_counts(records, cache_path: Path | None = None) -> dict[str, int | None]:
    """Frame count of every record's video, reusing cached counts of unchanged files."""
    cache_path = Path(cache_path) if cache_path is not None else default_cache_path()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        cache = {}
    counts: dict[str, int | None] = {}
    changed = False
    for rec in records:
        path = Path(rec.path)
        try:
            stat = path.stat()
        except OSError:
            counts[rec.video_id] = None
            continue
        key = str(path.resolve())
        entry = cache.get(key)
        if entry and entry.get("size") == stat.st_size and entry.get("mtime") == stat.st_mtime:
            counts[rec.video_id] = entry["frames"]
            continue
        frames = probe_frame_count(path)
        counts[rec.video_id] = frames
        if frames is not None:
            cache[key] = {"size": stat.st_size, "mtime": stat.st_mtime, "frames": frames}
            changed = True
    if changed:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(cache_path, json.dumps(cache, indent=0, sort_keys=True))
        except OSError as exc:  # a read-only home must not stop an evaluation
            log.warning("%s: cannot write the frame-count cache (%s)", cache_path, exc)
    return counts
