"""UCF-Crime (Sultani, Chen, Shah, CVPR 2018): official split lists and temporal annotation.

Checked against the real files in shared/data/benchmark-lists (see its SOURCES.md):

* ``Anomaly_Train.txt`` / ``Anomaly_Test.txt``: one ``<Folder>/<video>.mp4`` per line; 1610 = 810 + 800
  and 290 = 140 + 150. Training normals live in ``Training_Normal_Videos_Anomaly/`` and are named
  ``Normal_VideosNNN_x264``, test normals in ``Testing_Normal_Videos_Anomaly/`` as
  ``Normal_Videos_NNN_x264``. Copies with CRLF (salva-u) or no final newline read the same.
* ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``: ``<video>.mp4  <Class>  s1  e1  s2  e2`` with
  two-space separators, two trailing spaces, ``-1`` for a missing interval. Also accepted: the VadCLIP
  copy without ``.mp4``, the shorter name ``Temporal_Anomaly_Annotation.txt``, and UR-DMU's
  ``UCF_Annotation.txt`` (``<Folder>/<video>.mp4 <n_frames> <Class> s1 e1 s2 e2``).
* Feature lists of RTFM (``ucf-i3d.list``: Windows paths, CRLF, ``<video>_i3d.npy``) or UR-DMU
  (``UCF_Train.list``: ``dataset/<Folder>/<video>__<crop>.npy``) may be given as ``train_list`` /
  ``test_list``; they name the same videos.

Videos are found wherever they are under the root (one walk builds a name index), so the
``Anomaly-Videos-Part-N/`` folders of the download and a ``Training_Normal_Videos_Anom/`` spelling work.

Without the videos (``require_videos=False``, used for imported features), listed videos are kept at the
path the official layout gives them, and UR-DMU's frame-count column becomes ``VideoRecord.n_frames``.

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
from pathlib import Path

from wsvad.data.listfiles import (
    Line,
    find_file,
    index_media,
    posix_path,
    read_lines,
    rel_posix,
    video_stem,
)
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

    >>> class_of("Abuse/Abuse028_x264.mp4"), class_of("G:\\\\feats\\\\Normal_Videos_003_x264_i3d.npy")
    ('Abuse', 'Normal')
    """
    path = posix_path(entry)
    if len(path.parts) > 1 and not path.name.lower().endswith(".npy"):
        folder = path.parent.name
        return "Normal" if "normal" in folder.lower() else folder
    match = _CLASS_OF_NAME.match(video_stem(entry))
    return match.group(1) if match else ""


def parse_annotation(
    path: Path,
    problems: list[Problem],
    end_inclusive: bool = True,
    frame_counts: dict[str, int] | None = None,
) -> dict[str, tuple[str, tuple[Interval, ...], int]]:
    """Read a UCF temporal annotation: ``{video_id: (class, half-open intervals, line number)}``.

    UR-DMU's copy also states each video's frame count; it goes into ``frame_counts`` when given.
    """
    out: dict[str, tuple[str, tuple[Interval, ...], int]] = {}
    lines = read_lines(path, problems, kind="unreadable-annotation")
    for line in lines or []:
        where = f"{path}:{line.number}"
        tokens = line.text.split()
        if len(tokens) >= 3 and _INT.match(tokens[1]) and not _INT.match(tokens[2]):
            if frame_counts is not None and int(tokens[1]) > 0:
                frame_counts[video_stem(tokens[0])] = int(tokens[1])
            tokens = [tokens[0]] + tokens[2:]  # UR-DMU: the frame-count column is not an interval
        if (
            len(tokens) < 2
            or _INT.match(tokens[1])
            or not all(_INT.match(t) for t in tokens[2:])
            or len(tokens[2:]) % 2
        ):
            problems.append(
                Problem(
                    "error",
                    "bad-annotation-line",
                    f"{where}: expected '<video> <Class> s1 e1 [s2 e2]', got {line.text!r}",
                    path=str(path),
                )
            )
            continue
        vid, cls, nums = video_stem(tokens[0]), tokens[1], [int(t) for t in tokens[2:]]
        intervals: list[Interval] = []
        for s, e in zip(nums[::2], nums[1::2]):
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
        out[vid] = (cls, tuple(intervals), line.number)
    return out


def expected_rel_path(entry: str, video_id: str, cls: str) -> str:
    """Where a listed video sits in the official layout: the list's own ``<Folder>/<video>.mp4`` when it
    names a video, else ``<Class>/<video>.mp4`` (feature-list entries name the publisher's disk).

    >>> expected_rel_path("G:\\\\f\\\\Abuse028_x264_i3d.npy", "Abuse028_x264", "Abuse")
    'Abuse/Abuse028_x264.mp4'
    """
    path = posix_path(entry)
    if path.suffix.lower() != ".npy" and path.suffix:
        return path.as_posix().lstrip("/")
    return f"{cls}/{video_id}.mp4"


def absent_videos_warning(absent: list[str], root: Path) -> Problem:
    """One warning for every listed video kept without its file (``require_videos=False``)."""
    shown = ", ".join(absent[:3]) + (" ..." if len(absent) > 3 else "")
    return Problem(
        "warning",
        "video-not-on-disk",
        f"{len(absent)} listed videos are not under {root} ({shown}); "
        "kept with labels from the lists (require_videos=False)",
        None,
        str(root),
    )


def read_split_list(path: Path, problems: list[Problem]) -> list[tuple[str, str, int]]:
    """``(video_id, entry, line number)`` for each video of a split list; crop lines collapse to one."""
    out: list[tuple[str, str, int]] = []
    seen: dict[str, int] = {}
    previous = None
    for line in read_lines(path, problems) or []:
        tokens = line.text.split()
        if len(tokens) > 1 and all(_INT.match(t) for t in tokens[1:]):
            line = Line(line.number, tokens[0])  # some copies add a numeric label column
        vid = video_stem(line.text)
        if not vid or " " in line.text:
            problems.append(
                Problem(
                    "error",
                    "bad-list-line",
                    f"{path}:{line.number}: not a video path: {line.text!r}",
                    path=str(path),
                )
            )
            continue
        if vid == previous and line.text.lower().endswith(".npy"):
            continue  # the next crop of the same video in a per-crop feature list
        previous = vid
        if vid in seen:
            problems.append(
                Problem(
                    "warning",
                    "duplicate",
                    f"{path}:{line.number}: {vid} listed again (first on line {seen[vid]})",
                    vid,
                    str(path),
                )
            )
            continue
        seen[vid] = line.number
        out.append((vid, line.text, line.number))
    return out


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
        known_classes: when every class found is one of these, ``class_names`` is ``Normal`` + these
            (stable indices for the real benchmark); otherwise ``Normal`` + the sorted classes found.
        require_videos: ``False`` keeps listed videos that are not on disk (labels and frame GT from
            the lists alone, for imported features); their ``path`` is where the video would be.
    """
    problems: list[Problem] = []
    files: dict[str, Path | None] = {}
    for key, given, names in (
        ("train", train_list, TRAIN_LISTS),
        ("test", test_list, TEST_LISTS),
        ("annotation", annotations, ANNOTATIONS),
    ):
        path = Path(given) if given is not None else find_file(root, names)
        if path is None or not path.is_file():
            shown = path if path is not None else f"{root}/{names[0]}"
            problems.append(
                Problem(
                    "error",
                    "missing-file",
                    f"{shown}: {key} {'list' if key != 'annotation' else 'file'} not found",
                    path=str(shown),
                )
            )
            path = None
        files[key] = path
    counts: dict[str, int] = {}
    annotated = (
        parse_annotation(files["annotation"], problems, frame_counts=counts)
        if files["annotation"]
        else {}
    )
    media = index_media(root)
    absent: list[str] = []
    records: list[VideoRecord] = []
    split_of: dict[str, str] = {}
    for split in ("train", "test"):
        if files[split] is None:
            continue
        for vid, entry, number in read_split_list(files[split], problems):
            where = f"{files[split]}:{number}"
            if vid in split_of:
                problems.append(
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
            cls = class_of(entry)
            if not cls:
                problems.append(
                    Problem(
                        "error",
                        "bad-list-line",
                        f"{where}: cannot tell the class of {entry!r} (expected <Class>/<video>.mp4)",
                        vid,
                        entry,
                    )
                )
                continue
            folder = posix_path(entry).parent.name or None
            path, candidates = media.find(vid, prefer_parent=folder)
            if path is None and not require_videos:
                absent.append(vid)
                path = root / expected_rel_path(entry, vid, cls)
            elif path is None:
                problems.append(
                    Problem(
                        "error",
                        "missing-video",
                        f"{where}: {vid} is listed but no video file or frame folder is under {root}",
                        vid,
                        entry,
                    )
                )
                continue
            if len(candidates) > 1:
                others = ", ".join(rel_posix(c, root) for c in candidates if c != path)
                problems.append(
                    Problem(
                        "warning",
                        "duplicate-file",
                        f"{vid}: using {rel_posix(path, root)}; also found {others}",
                        vid,
                        rel_posix(path, root),
                    )
                )
            label = 0 if cls == "Normal" else 1
            intervals: tuple[Interval, ...] | None = None
            if split == "test":
                ann = annotated.get(vid)
                if ann is None:
                    if label == 1 and files["annotation"] is not None:
                        problems.append(
                            Problem(
                                "error",
                                "missing-annotation",
                                f"{vid}: abnormal test video has no line in {files['annotation'].name}",
                                vid,
                                entry,
                            )
                        )
                        continue
                    intervals = ()
                else:
                    ann_cls, intervals, ann_line = ann
                    if ann_cls != cls:
                        problems.append(
                            Problem(
                                "warning",
                                "class-mismatch",
                                f"{files['annotation'].name}:{ann_line}: {vid} annotated as {ann_cls} but listed as {cls}",
                                vid,
                                entry,
                            )
                        )
                    if label == 0 and intervals:
                        problems.append(
                            Problem(
                                "error",
                                "normal-with-intervals",
                                f"{files['annotation'].name}:{ann_line}: normal video {vid} has anomalous intervals",
                                vid,
                                entry,
                            )
                        )
                        continue
                    if label == 1 and not intervals:
                        problems.append(
                            Problem(
                                "error",
                                "missing-annotation",
                                f"{files['annotation'].name}:{ann_line}: abnormal test video {vid} has no interval",
                                vid,
                                entry,
                            )
                        )
                        continue
            records.append(
                VideoRecord(
                    vid,
                    path.resolve(),
                    rel_posix(path, root),
                    split,
                    label,
                    () if label == 0 else (cls,),
                    intervals,
                    n_frames=counts.get(vid),
                )
            )
    for vid, (_, _, line) in annotated.items():
        if split_of.get(vid) != "test":
            where = f"{files['annotation'].name}:{line}"
            state = "in the train list" if vid in split_of else "in no split list"
            problems.append(
                Problem(
                    "error",
                    "annotated-not-in-test",
                    f"{where}: {vid} is annotated but {state}",
                    vid,
                    None,
                )
            )
    if absent:
        problems.append(absent_videos_warning(absent, root))
    found = sorted({c for r in records for c in r.classes})
    classes = list(known_classes) if known_classes and set(found) <= set(known_classes) else found
    return DatasetIndex(name, root, records, problems, ["Normal", *classes])


@register_dataset(
    "ucf",
    summary="UCF-Crime: 1610 train / 290 test videos, 13 anomaly classes, official lists and temporal annotation",
    layout=(
        "ROOT/<Class>/<video>.mp4 (or Anomaly-Videos-Part-N/<Class>/...), "
        "Training_Normal_Videos_Anomaly/, Testing_Normal_Videos_Anomaly/, Anomaly_Train.txt, Anomaly_Test.txt, "
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
