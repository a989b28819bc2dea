"""Any directory of videos (and frame folders), optionally labelled by a ``labels.csv``.

This is how users bring their own footage. Every video file under the root and every leaf folder
of images (a frame folder) is one video; its id is its path relative to the root without the
extension, with ``/`` replaced by ``__`` (so a flat folder gives plain file stems).

``labels.csv`` (at the root, header required) has the columns ``video,label,class,intervals`` and
may add ``split``:

* ``video``: the path relative to the root (``cam1/2024-05-01.mp4``), the id, or the file stem.
* ``label``: ``0`` normal or ``1`` abnormal.
* ``class``: optional anomaly class (ignored when ``label`` is 0).
* ``intervals``: optional frame intervals ``"10-50;80-120"``, half-open like Python slices
  (``10-50`` marks frames 10..49), for test videos.
* ``split``: optional ``train`` or ``test`` (default ``test``).

Without ``labels.csv`` every video is a test video with label ``-1`` (unknown) and no frame
ground truth (``intervals=None``): enough to extract features and score, not to train or evaluate.
Videos on disk that ``labels.csv`` does not mention get the same treatment, with a warning. An
abnormal test video without intervals also has ``intervals=None`` (evaluation skips it).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from wsvad.data.listfiles import index_media, rel_posix
from wsvad.data.records import DatasetIndex, Interval, Problem, VideoRecord
from wsvad.data.registry import register_dataset

LABELS_CSV = "labels.csv"
UNKNOWN_LABEL = -1
_INTERVAL = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def parse_intervals(text: str) -> tuple[Interval, ...]:
    """``"10-50;80-120"`` -> ``((10, 50), (80, 120))``; raises ValueError naming the bad part.

    >>> parse_intervals("10-50; 80-120")
    ((10, 50), (80, 120))
    """
    out: list[Interval] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = _INTERVAL.match(part)
        if not match:
            raise ValueError(f"interval {part!r} is not 'start-end'")
        start, end = int(match.group(1)), int(match.group(2))
        if end <= start:
            raise ValueError(f"interval {part!r} is empty or reversed (end is exclusive)")
        out.append((start, end))
    return tuple(sorted(out))


def _read_labels(path: Path, problems: list[Problem]) -> dict[str, tuple[dict[str, str], int]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(
            Problem("error", "unreadable-list", f"{path}: cannot read ({exc})", path=str(path))
        )
        return {}
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "video" not in fields or "label" not in fields:
        problems.append(
            Problem(
                "error",
                "bad-labels-csv",
                f"{path}: header must name at least 'video' and 'label' columns, "
                f"got {','.join(fields) or '(empty)'}",
                path=str(path),
            )
        )
        return {}
    rows: dict[str, tuple[dict[str, str], int]] = {}
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        key = row.get("video", "").replace("\\", "/")
        if not key:
            continue
        if key in rows:
            problems.append(
                Problem(
                    "warning",
                    "duplicate",
                    f"{path}:{number}: {key} labelled again (line {rows[key][1]}); "
                    "the later line is used",
                    path=str(path),
                )
            )
        rows[key] = (row, number)
    return rows


def load_folder(root: Path, labels: Path | str | None = None) -> DatasetIndex:
    """The ``folder`` adapter (see the module docstring)."""
    root = Path(root)
    problems: list[Problem] = []
    labels_path = Path(labels) if labels is not None else root / LABELS_CSV
    if labels is not None and not labels_path.is_file():
        problems.append(
            Problem(
                "error",
                "missing-file",
                f"{labels_path}: labels file not found",
                path=str(labels_path),
            )
        )
    rows = _read_labels(labels_path, problems) if labels_path.is_file() else {}
    media = index_media(root)
    records: list[VideoRecord] = []
    used: set[str] = set()  # the labels.csv keys that matched a video
    for path in sorted(p for paths in media.by_stem.values() for p in paths):
        record = _video_record(root, path, rows, labels_path, used, problems)
        if record is not None:
            records.append(record)
    for key, (_, number) in rows.items():
        if key not in used:
            problems.append(
                Problem(
                    "error",
                    "missing-video",
                    f"{labels_path.name}:{number}: {key} is labelled but not found under {root}",
                    None,
                    key,
                )
            )
    class_names = ["Normal", *sorted({c for r in records for c in r.classes})]
    return DatasetIndex("folder", root, records, problems, class_names)


def _video_record(
    root: Path,
    path: Path,
    rows: dict[str, tuple[dict[str, str], int]],
    labels_path: Path,
    used: set[str],
    problems: list[Problem],
) -> VideoRecord | None:
    """The record of one video on disk: from its ``labels.csv`` row (the row's key goes into
    ``used``), or an unlabelled test video; ``None`` (with an error) for a bad row."""
    rel = rel_posix(path, root)
    stem_rel = rel.rsplit(".", 1)[0] if path.is_file() else rel
    vid = stem_rel.replace("/", "__")
    key = next((k for k in (rel, stem_rel, vid, path.stem) if k in rows), None)
    if key is None:
        if rows:
            problems.append(
                Problem(
                    "warning",
                    "unlabelled-video",
                    f"{rel}: not in {labels_path.name}; label unknown",
                    vid,
                    rel,
                )
            )
        return VideoRecord(vid, path.resolve(), rel, "test", UNKNOWN_LABEL, (), None)
    used.add(key)
    row, number = rows[key]
    return _labelled_record(vid, path, rel, row, f"{labels_path.name}:{number}", problems)


def _labelled_record(
    vid: str, path: Path, rel: str, row: dict[str, str], where: str, problems: list[Problem]
) -> VideoRecord | None:
    """The record a ``labels.csv`` row gives a video, or ``None`` (with an error) for a bad row."""
    split = row.get("split") or "test"
    if row.get("label") not in ("0", "1") or split not in ("train", "test"):
        problems.append(
            Problem(
                "error",
                "bad-labels-csv",
                f"{where}: label must be 0 or 1 and split train or test, "
                f"got label={row.get('label')!r} split={split!r}",
                vid,
                rel,
            )
        )
        return None
    label = int(row["label"])
    try:
        intervals = parse_intervals(row.get("intervals", ""))
    except ValueError as exc:
        problems.append(Problem("error", "bad-interval", f"{where}: {exc}", vid, rel))
        return None
    if label == 0 and intervals:
        problems.append(
            Problem(
                "error",
                "normal-with-intervals",
                f"{where}: {vid} has label 0 but anomalous intervals",
                vid,
                rel,
            )
        )
        return None
    classes = (row.get("class") or "Anomaly",) if label == 1 else ()
    if split == "train":
        frame_gt = None
    else:  # an abnormal test video without intervals has no frame ground truth
        frame_gt = intervals if (label == 0 or intervals) else None
    return VideoRecord(vid, path.resolve(), rel, split, label, classes, frame_gt)


register_dataset(
    "folder",
    summary=(
        "Any directory of videos or frame folders; "
        "optional labels.csv (video,label,class,intervals[,split])"
    ),
    layout=(
        "ROOT/**/*.mp4|avi|mkv|... and ROOT/**/<frames>/*.jpg; "
        "ROOT/labels.csv optional (without it: all test, label -1)"
    ),
)(load_folder)
