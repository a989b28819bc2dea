"""UCF-Crime (Sultani, Chen, Shah, CVPR 2018): official split lists and temporal annotation.

Checked against the real files in wsvad/data/benchmark_lists (see its SOURCES.md):

* ``Anomaly_Train.txt`` / ``Anomaly_Test.txt``: one ``<Folder>/<video>.mp4`` per line;
  1610 = 810 + 800 and 290 = 140 + 150. Training normals live in
  ``Training_Normal_Videos_Anomaly/`` and are named ``Normal_VideosNNN_x264``, test normals in
  ``Testing_Normal_Videos_Anomaly/`` as ``Normal_Videos_NNN_x264``. Copies with CRLF (salva-u) or
  no final newline read the same.
* ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``: ``<video>.mp4  <Class>  s1  e1  s2  e2``
  with two-space separators, two trailing spaces, ``-1`` for a missing interval. Also accepted:
  the VadCLIP copy without ``.mp4``, the shorter name ``Temporal_Anomaly_Annotation.txt``, and
  UR-DMU's ``UCF_Annotation.txt`` (``<Folder>/<video>.mp4 <n_frames> <Class> s1 e1 s2 e2``).
* Feature lists of RTFM (``ucf-i3d.list``: Windows paths, CRLF, ``<video>_i3d.npy``) or UR-DMU
  (``UCF_Train.list``: ``dataset/<Folder>/<video>__<crop>.npy``) may be given as ``train_list`` /
  ``test_list``; they name the same videos.

Videos are found wherever they are under the root (one walk builds a name index), so the
``Anomaly-Videos-Part-N/`` folders of the download and a ``Training_Normal_Videos_Anom/`` spelling
work.

Without the videos (``require_videos=False``, used for imported features), listed videos are kept
at the path the official layout gives them, and UR-DMU's frame-count column becomes
``VideoRecord.n_frames``.

Interval convention: the annotation gives frame numbers ``s e``; wsvad reads them as 0-based with
``e`` inclusive and stores the half-open ``[s, e + 1)``. This is what RTFM's ``make_gt_ucf.py`` does
(``range(start, end + 1)``), and RTFM's ``gt-ucf.npy`` is the ground truth behind most published UCF
numbers since 2021 (RTFM, UR-DMU, MGFN reuse it). Other readings exist and differ by one frame:
VadCLIP's ``make_gt_ucf.py`` sets ``gt[s:e]`` and Sultani's MATLAB evaluation indexes 1-based. Seven
annotations end at or past the video's frame count (e.g. ``Shooting015_x264``: 855-1715 for 1713
frames); ``groundtruth.frame_labels`` clips them with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from wsvad.data.listfiles import (
    MediaIndex,
    absent_videos_warning,
    index_media,
    posix_path,
    read_lines,
    read_split_list,
    rel_posix,
    video_stem,
)
from wsvad.data.packaged import official_file
from wsvad.data.records import DatasetIndex, Interval, Problem, VideoRecord
from wsvad.data.registry import register_dataset

UCF_CLASSES = (
    "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
    "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism",
)  # fmt: skip
TRAIN_LISTS = ("Anomaly_Train.txt",)
TEST_LISTS = ("Anomaly_Test.txt",)
ANNOTATIONS = (
    "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
    "Temporal_Anomaly_Annotation.txt",
    "UCF_Annotation.txt",
)
_INT = re.compile(r"-?\d+$")
_CLASS_OF_NAME = re.compile(r"^([A-Za-z]+?)(_Videos)?_?\d")


def class_of(entry: str) -> str:
    """The class of a list entry: the folder of a video path, else the letters before the number.

    Feature lists (RTFM, UR-DMU) put files in folders that are not classes, so only video entries
    (``Abuse/Abuse028_x264.mp4``) trust their folder.

    >>> class_of("Abuse/Abuse028_x264.mp4")
    'Abuse'
    >>> class_of("G:\\\\feats\\\\Normal_Videos_003_x264_i3d.npy")
    'Normal'
    """
    path = posix_path(entry)
    if len(path.parts) > 1 and not path.name.lower().endswith(".npy"):
        folder = path.parent.name
        return "Normal" if "normal" in folder.lower() else folder
    match = _CLASS_OF_NAME.match(video_stem(entry))
    return match.group(1) if match else ""


# {video_id: (class, half-open intervals, line number)}
Annotation = dict[str, tuple[str, tuple[Interval, ...], int]]


def parse_annotation(
    path: Path,
    problems: list[Problem],
    end_inclusive: bool = True,
    frame_counts: dict[str, int] | None = None,
) -> Annotation:
    """Read a UCF temporal annotation: ``{video_id: (class, half-open intervals, line number)}``.

    UR-DMU's copy also states each video's frame count; it goes into ``frame_counts`` when given.
    """
    out: Annotation = {}
    for line in read_lines(path, problems, kind="unreadable-annotation") or []:
        where = f"{path}:{line.number}"
        tokens = _drop_frame_count(line.text.split(), frame_counts)
        if not _is_annotation(tokens):
            problems.append(
                Problem(
                    "error",
                    "bad-annotation-line",
                    f"{where}: expected '<video> <Class> s1 e1 [s2 e2]', got {line.text!r}",
                    path=str(path),
                )
            )
            continue
        vid, cls = video_stem(tokens[0]), tokens[1]
        nums = [int(t) for t in tokens[2:]]
        intervals = _annotated_intervals(nums, vid, where, path, problems, end_inclusive)
        if vid in out:
            problems.append(
                Problem(
                    "warning",
                    "duplicate",
                    f"{where}: {vid} annotated again (line {out[vid][2]}); the later line is used",
                    vid,
                    str(path),
                )
            )
        out[vid] = (cls, intervals, line.number)
    return out


def _drop_frame_count(tokens: list[str], frame_counts: dict[str, int] | None) -> list[str]:
    """The tokens without UR-DMU's frame-count column (``<video> <n_frames> <Class> ...``), whose
    value goes into ``frame_counts``; other lines unchanged."""
    if len(tokens) >= 3 and _INT.match(tokens[1]) and not _INT.match(tokens[2]):
        if frame_counts is not None and int(tokens[1]) > 0:
            frame_counts[video_stem(tokens[0])] = int(tokens[1])
        return [tokens[0]] + tokens[2:]  # the frame-count column is not an interval
    return tokens


def _is_annotation(tokens: list[str]) -> bool:
    """``<video> <Class>`` followed by whole pairs of integers."""
    return (
        len(tokens) >= 2
        and not _INT.match(tokens[1])
        and all(_INT.match(t) for t in tokens[2:])
        and not len(tokens[2:]) % 2
    )


def _annotated_intervals(
    nums: list[int],
    vid: str,
    where: str,
    path: Path,
    problems: list[Problem],
    end_inclusive: bool,
) -> tuple[Interval, ...]:
    """The valid half-open intervals of the pairs ``s1 e1 s2 e2 ...``; invalid pairs are errors."""
    intervals: list[Interval] = []
    for s, e in zip(nums[::2], nums[1::2], strict=True):  # the caller checked whole pairs
        if s == -1 and e == -1:
            continue  # -1 pads a missing second interval
        if s < 0 or e < s:
            problems.append(
                Problem(
                    "error",
                    "bad-interval",
                    f"{where}: interval {s}-{e} of {vid} is invalid",
                    vid,
                    str(path),
                )
            )
            continue
        intervals.append((s, e + 1 if end_inclusive else e))
    return tuple(intervals)


def expected_rel_path(entry: str, video_id: str, cls: str) -> str:
    """Where a listed video sits in the official layout: the list's own ``<Folder>/<video>.mp4``
    when it names a video, else ``<Class>/<video>.mp4`` (feature-list entries name the
    publisher's disk).

    >>> expected_rel_path("G:\\\\f\\\\Abuse028_x264_i3d.npy", "Abuse028_x264", "Abuse")
    'Abuse/Abuse028_x264.mp4'
    """
    path = posix_path(entry)
    if path.suffix.lower() != ".npy" and path.suffix:
        return path.as_posix().lstrip("/")
    return f"{cls}/{video_id}.mp4"


def load_ucf_layout(
    root: Path,
    train_list: Path | str | None = None,
    test_list: Path | str | None = None,
    annotations: Path | str | None = None,
    name: str = "ucf",
    known_classes: tuple[str, ...] | None = UCF_CLASSES,
    require_videos: bool = True,
) -> DatasetIndex:
    """Parse a UCF-Crime style layout (also used for the synthetic dataset).

    Args:
        root: dataset root; lists and the annotation are found under it (up to 3 levels deep)
            unless given explicitly.
        train_list, test_list, annotations: explicit files (e.g. RTFM or UR-DMU lists).
        name: adapter name stored in the index.
        known_classes: when every class found is one of these, ``class_names`` is ``Normal`` +
            these (stable indices for the real benchmark); otherwise ``Normal`` + the sorted
            classes found.
        require_videos: ``False`` keeps listed videos that are not on disk (labels and frame GT
            from the lists alone, for imported features); their ``path`` is where the video
            would be.
    """
    problems: list[Problem] = []
    given = {"train": train_list, "test": test_list, "annotation": annotations}
    files = _find_layout_files(root, given, problems)
    frame_counts: dict[str, int] = {}
    annotated = (
        parse_annotation(files["annotation"], problems, frame_counts=frame_counts)
        if files["annotation"]
        else {}
    )
    layout = _Layout(
        root, files, annotated, frame_counts, index_media(root), require_videos, problems
    )
    records, split_of = _listed_records(layout)
    _check_annotated_are_tested(layout, split_of)
    if layout.absent:
        problems.append(absent_videos_warning(layout.absent, root))
    found = sorted({c for r in records for c in r.classes})
    classes = list(known_classes) if known_classes and set(found) <= set(known_classes) else found
    return DatasetIndex(name, root, records, problems, ["Normal", *classes])


@dataclass
class _Layout:
    """A UCF layout being parsed: what each listed video is checked against, where problems go."""

    root: Path
    files: dict[str, Path | None]  # "train", "test", "annotation" -> the file, None if missing
    annotated: Annotation
    frame_counts: dict[str, int]  # UR-DMU's annotation column
    media: MediaIndex
    require_videos: bool
    problems: list[Problem]
    absent: list[str] = field(default_factory=list)  # listed videos kept without their file


def _find_layout_files(
    root: Path, given: dict[str, Path | str | None], problems: list[Problem]
) -> dict[str, Path | None]:
    """The train list, test list and annotation: as given, else found under ``root``."""
    files: dict[str, Path | None] = {}
    for key, names in (("train", TRAIN_LISTS), ("test", TEST_LISTS), ("annotation", ANNOTATIONS)):
        path = Path(given[key]) if given[key] is not None else official_file(root, "ucf", names)
        if path is None or not path.is_file():
            shown = path if path is not None else f"{root}/{names[0]}"
            what = "list" if key != "annotation" else "file"
            problems.append(
                Problem(
                    "error", "missing-file", f"{shown}: {key} {what} not found", path=str(shown)
                )
            )
            path = None
        files[key] = path
    return files


def _listed_records(layout: _Layout) -> tuple[list[VideoRecord], dict[str, str]]:
    """The records of the train and test lists, in list order, and the split of every listed id."""
    records: list[VideoRecord] = []
    split_of: dict[str, str] = {}
    for split in ("train", "test"):
        list_path = layout.files[split]
        if list_path is None:
            continue
        for vid, entry, number in read_split_list(list_path, layout.problems):
            where = f"{list_path}:{number}"
            if vid in split_of:
                layout.problems.append(
                    Problem(
                        "error",
                        "train-test-overlap",
                        f"{where}: {vid} is also in the {split_of[vid]} list",
                        vid,
                        entry,
                    )
                )
                continue
            split_of[vid] = split
            record = _listed_record(layout, split, vid, entry, where)
            if record is not None:
                records.append(record)
    return records, split_of


def _listed_record(
    layout: _Layout, split: str, vid: str, entry: str, where: str
) -> VideoRecord | None:
    """The record of one list entry, or ``None`` (with an error) when it cannot be used."""
    cls = class_of(entry)
    if not cls:
        layout.problems.append(
            Problem(
                "error",
                "bad-list-line",
                f"{where}: cannot tell the class of {entry!r} (expected <Class>/<video>.mp4)",
                vid,
                entry,
            )
        )
        return None
    path = _video_path(layout, vid, entry, cls, where)
    if path is None:
        return None
    label = 0 if cls == "Normal" else 1
    intervals: tuple[Interval, ...] | None = None
    if split == "test":
        intervals = _test_intervals(layout, vid, entry, cls, label)
        if intervals is None:
            return None
    return VideoRecord(
        vid,
        path.resolve(),
        rel_posix(path, layout.root),
        split,
        label,
        () if label == 0 else (cls,),
        intervals,
        n_frames=layout.frame_counts.get(vid),
    )


def _video_path(layout: _Layout, vid: str, entry: str, cls: str, where: str) -> Path | None:
    """The listed video's file or frame folder (preferring the list's folder), where it would be
    when it may be absent, or ``None`` (with an error) when it must be on disk and is not."""
    folder = posix_path(entry).parent.name or None
    path, candidates = layout.media.find(vid, prefer_parent=folder)
    if path is None and not layout.require_videos:
        layout.absent.append(vid)
        path = layout.root / expected_rel_path(entry, vid, cls)
    elif path is None:
        layout.problems.append(
            Problem(
                "error",
                "missing-video",
                f"{where}: {vid} is listed but no video file or frame folder is under "
                f"{layout.root}",
                vid,
                entry,
            )
        )
        return None
    if len(candidates) > 1:
        root = layout.root
        others = ", ".join(rel_posix(c, root) for c in candidates if c != path)
        layout.problems.append(
            Problem(
                "warning",
                "duplicate-file",
                f"{vid}: using {rel_posix(path, root)}; also found {others}",
                vid,
                rel_posix(path, root),
            )
        )
    return path


def _test_intervals(
    layout: _Layout, vid: str, entry: str, cls: str, label: int
) -> tuple[Interval, ...] | None:
    """A test video's annotated intervals (``()`` for an unannotated normal video), or ``None``
    (with an error) when the annotation contradicts the list."""
    ann = layout.annotated.get(vid)
    ann_file = layout.files["annotation"]
    if ann is None:
        if label == 1 and ann_file is not None:
            layout.problems.append(
                Problem(
                    "error",
                    "missing-annotation",
                    f"{vid}: abnormal test video has no line in {ann_file.name}",
                    vid,
                    entry,
                )
            )
            return None
        return ()
    ann_cls, intervals, ann_line = ann
    where = f"{ann_file.name}:{ann_line}"  # an annotated video implies an annotation file
    if ann_cls != cls:
        layout.problems.append(
            Problem(
                "warning",
                "class-mismatch",
                f"{where}: {vid} annotated as {ann_cls} but listed as {cls}",
                vid,
                entry,
            )
        )
    if label == 0 and intervals:
        layout.problems.append(
            Problem(
                "error",
                "normal-with-intervals",
                f"{where}: normal video {vid} has anomalous intervals",
                vid,
                entry,
            )
        )
        return None
    if label == 1 and not intervals:
        layout.problems.append(
            Problem(
                "error",
                "missing-annotation",
                f"{where}: abnormal test video {vid} has no interval",
                vid,
                entry,
            )
        )
        return None
    return intervals


def _check_annotated_are_tested(layout: _Layout, split_of: dict[str, str]) -> None:
    """An error for every annotated video that is not in the test list."""
    for vid, (_, _, line) in layout.annotated.items():
        if split_of.get(vid) != "test":
            where = f"{layout.files['annotation'].name}:{line}"
            state = "in the train list" if vid in split_of else "in no split list"
            layout.problems.append(
                Problem(
                    "error",
                    "annotated-not-in-test",
                    f"{where}: {vid} is annotated but {state}",
                    vid,
                    None,
                )
            )


@register_dataset(
    "ucf",
    summary=(
        "UCF-Crime: 1610 train / 290 test videos, 13 anomaly classes, "
        "official lists and temporal annotation"
    ),
    layout=(
        "ROOT/<Class>/<video>.mp4 (or Anomaly-Videos-Part-N/<Class>/...), "
        "Training_Normal_Videos_Anomaly/, Testing_Normal_Videos_Anomaly/, "
        "Anomaly_Train.txt, Anomaly_Test.txt, "
        "Temporal_Anomaly_Annotation_for_Testing_Videos.txt (anywhere up to 3 levels below ROOT)"
    ),
)
def load_ucf(
    root: Path,
    train_list: Path | None = None,
    test_list: Path | None = None,
    annotations: Path | None = None,
    require_videos: bool = True,
) -> DatasetIndex:
    """The ``ucf`` adapter (see the module docstring for formats and conventions)."""
    return load_ucf_layout(
        Path(root), train_list, test_list, annotations, require_videos=require_videos
    )
