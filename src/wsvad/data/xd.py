"""XD-Violence (Wu et al., ECCV 2020): labels in the video names, test frame annotations.

Checked against the real files in wsvad/data/benchmark_lists (see its SOURCES.md):

* Names: ``<movie or v=YouTubeId>__#<range or 1>_label_<L1>-<L2>-<L3>``; ``label_A`` is normal,
  otherwise up to three of B1 fighting, B2 shooting, B4 riot, B5 abuse, B6 car accident,
  G explosion, padded with ``0`` (``label_B1-0-0``). Classes are kept as these codes
  (``("G", "B2", "B6")``).
* ``annotations.txt`` (VadCLIP copy of the official file): ``<name> s1 e1 [s2 e2 ...]``, exactly
  the 500 violent test videos; 14 names end in ``.mp4``, which is stripped. UR-DMU's
  ``XD_Annotation.txt`` (no ``.mp4``) is accepted too. Interval convention: half-open ``[s, e)``,
  as the authors' own ``list/make_gt.py`` (Roc-Ng/XDVioDet) sets ``gt_vec[s:e] = 1`` (VadCLIP's
  ``make_gt_xd.py`` does the same).
* The authors' feature lists ``rgb.list`` / ``rgb_test.list`` (5 crops per video,
  ``<name>__<k>.npy``) and UR-DMU's ``XD_Train.list`` / ``XD_Test.list`` define the split when
  present.

How the videos sit on disk: the official download is a set of training archives (``1-1004``,
``1005-2004``, ...) and one test archive, which users unpack into a training and a test folder
(``Train/``, ``Test/``, ``TestClips/Videos`` in the authors' ``make_gt.py``). The split of a video
is taken, in order, from the split lists if any is found, else from the nearest enclosing folder
whose name contains ``train`` or ``test``; a video that is annotated is a test video either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from wsvad.data.listfiles import (
    MediaIndex,
    absent_videos_warning,
    find_file,
    index_media,
    read_lines,
    read_split_list,
    rel_posix,
    video_stem,
)
from wsvad.data.packaged import official_file
from wsvad.data.records import DatasetIndex, Interval, Problem, VideoRecord
from wsvad.data.registry import register_dataset

XD_CLASSES = {
    "B1": "Fighting",
    "B2": "Shooting",
    "B4": "Riot",
    "B5": "Abuse",
    "B6": "Car accident",
    "G": "Explosion",
}
LISTS = {"train": ("rgb.list", "XD_Train.list"), "test": ("rgb_test.list", "XD_Test.list")}
ANNOTATIONS = ("annotations.txt", "XD_Annotation.txt")
_LABEL = re.compile(r"_label_([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)$")
_INT = re.compile(r"\d+$")


def parse_xd_label(name: str) -> tuple[int, tuple[str, ...]]:
    """Video-level label and class codes from an XD-Violence name.

    >>> parse_xd_label("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6")
    (1, ('G', 'B2', 'B6'))
    >>> parse_xd_label("v=abc__#1_label_A")
    (0, ())
    """
    match = _LABEL.search(name)
    if not match:
        raise ValueError(f"{name}: no '_label_<codes>' suffix")
    codes = [c for c in match.group(1).split("-") if c != "0"]
    if codes == ["A"]:
        return 0, ()
    unknown = [c for c in codes if c not in XD_CLASSES]
    if not codes or unknown:
        raise ValueError(
            f"{name}: unknown label code(s) {', '.join(unknown) or '(none)'}; "
            f"known: A, {', '.join(XD_CLASSES)}"
        )
    return 1, tuple(codes)


def parse_xd_annotation(
    path: Path, problems: list[Problem]
) -> dict[str, tuple[tuple[Interval, ...], int]]:
    """``{video_id: (half-open intervals, line number)}`` from an XD-Violence annotation file."""
    out: dict[str, tuple[tuple[Interval, ...], int]] = {}
    for line in read_lines(path, problems, kind="unreadable-annotation") or []:
        where = f"{path}:{line.number}"
        tokens = line.text.split()
        nums = tokens[1:]
        if not nums or len(nums) % 2 or not all(_INT.match(t) for t in nums):
            problems.append(
                Problem(
                    "error",
                    "bad-annotation-line",
                    f"{where}: expected '<video> s1 e1 [s2 e2 ...]' with frame-number pairs, "
                    f"got {line.text!r}",
                    path=str(path),
                )
            )
            continue
        vid = video_stem(tokens[0])
        values = [int(t) for t in nums]
        pairs = tuple(zip(values[::2], values[1::2], strict=True))  # whole pairs, checked
        bad = [f"{s}-{e}" for s, e in pairs if e <= s]
        if bad:
            problems.append(
                Problem(
                    "error",
                    "bad-interval",
                    f"{where}: {vid}: empty or reversed interval(s) {', '.join(bad)}",
                    vid,
                    str(path),
                )
            )
            continue
        if vid in out:
            problems.append(
                Problem(
                    "warning",
                    "duplicate",
                    f"{where}: {vid} annotated again (line {out[vid][1]}); the later line is used",
                    vid,
                    str(path),
                )
            )
        out[vid] = (pairs, line.number)
    return out


def _split_from_folders(rel: str) -> str | None:
    for part in reversed(rel.split("/")[:-1]):
        low = part.lower()
        if "test" in low:
            return "test"
        if "train" in low:
            return "train"
    return None


def load_xd_layout(
    root: Path,
    train_list: Path | str | None = None,
    test_list: Path | str | None = None,
    annotations: Path | str | None = None,
    require_videos: bool = True,
) -> DatasetIndex:
    """Parse an XD-Violence layout; see the module docstring.

    ``require_videos=False`` keeps listed videos that are not on disk (``path`` =
    ``ROOT/<split>/<name>.mp4``), for imported features: labels, splits and frame GT from the lists.
    """
    problems: list[Problem] = []
    ann_path, annotated = _read_annotation(root, annotations, problems)
    listed = _read_split_lists(
        root, {"train": train_list, "test": test_list}, problems, packaged=not require_videos
    )
    media = index_media(root)
    layout = _Layout(root, ann_path, annotated, listed, media, require_videos, problems)
    records: list[VideoRecord] = []
    for vid in sorted(set(media.by_stem) | set(listed)):
        record = _video_record(layout, vid)
        if record is not None:
            records.append(record)
    _check_annotated_are_tested(layout, records)
    if layout.absent:
        problems.append(absent_videos_warning(layout.absent, root))
    return DatasetIndex("xd", root, records, problems, ["Normal", *XD_CLASSES])


@dataclass
class _Layout:
    """An XD-Violence layout being parsed: what each video is checked against, where problems go."""

    root: Path
    ann_path: Path | None  # None when the annotation file is missing
    annotated: dict[str, tuple[tuple[Interval, ...], int]]
    listed: dict[str, str]  # video id -> split, from the split lists (empty without lists)
    media: MediaIndex
    require_videos: bool
    problems: list[Problem]
    absent: list[str] = field(default_factory=list)  # listed videos kept without their file


def _read_annotation(
    root: Path, annotations: Path | str | None, problems: list[Problem]
) -> tuple[Path | None, dict[str, tuple[tuple[Interval, ...], int]]]:
    """The annotation file (as given, else found under ``root``) and what it annotates."""
    ann_path = (
        Path(annotations) if annotations is not None else official_file(root, "xd", ANNOTATIONS)
    )
    if ann_path is None or not ann_path.is_file():
        shown = ann_path if ann_path is not None else root / ANNOTATIONS[0]
        problems.append(
            Problem(
                "error",
                "missing-file",
                f"{shown}: annotation file not found (test videos get no frame ground truth)",
                path=str(shown),
            )
        )
        return None, {}
    return ann_path, parse_xd_annotation(ann_path, problems)


def _read_split_lists(
    root: Path, given: dict[str, Path | str | None], problems: list[Problem], packaged: bool
) -> dict[str, str]:
    """``{video id: split}`` from the split lists (as given, else found); empty without lists.

    ``packaged``: with no list under the root, read the official ones shipped with wsvad. Only
    without videos (imported features): with videos, their Train/Test folders give the split, and
    the official lists would leave every video of a custom XD-style set without one.
    """
    listed: dict[str, str] = {}
    for split in ("train", "test"):
        explicit = given[split]
        path = (
            Path(explicit)
            if explicit is not None
            else (
                official_file(root, "xd", LISTS[split])
                if packaged
                else find_file(root, LISTS[split])
            )
        )
        if explicit is not None and not Path(explicit).is_file():
            problems.append(
                Problem(
                    "error",
                    "missing-file",
                    f"{explicit}: {split} list not found",
                    path=str(explicit),
                )
            )
            continue
        for vid, _, number in read_split_list(path, problems) if path is not None else []:
            if vid in listed and listed[vid] != split:
                problems.append(
                    Problem(
                        "error",
                        "train-test-overlap",
                        f"{path}:{number}: {vid} is also in the {listed[vid]} list",
                        vid,
                        str(path),
                    )
                )
                continue
            listed[vid] = split
    return listed


def _video_record(layout: _Layout, vid: str) -> VideoRecord | None:
    """The record of one video (on disk or listed), or ``None`` (with a problem) when unusable."""
    found = _video_path(layout, vid)
    if found is None:
        return None
    rel = rel_posix(found, layout.root)
    try:
        label, classes = parse_xd_label(vid)
    except ValueError as exc:
        layout.problems.append(Problem("error", "bad-name", f"{rel}: {exc}", vid, rel))
        return None
    split = _split_of(layout, vid, rel)
    if split is None:
        return None
    intervals: tuple[Interval, ...] | None = None
    if split == "test":
        intervals = _test_intervals(layout, vid, rel, label)
        if intervals is None:
            return None
    return VideoRecord(vid, found.resolve(), rel, split, label, classes, intervals)


def _video_path(layout: _Layout, vid: str) -> Path | None:
    """The video's file or frame folder, where it would be when it may be absent, or ``None``
    (with an error) when it must be on disk and is not."""
    found, candidates = layout.media.find(vid)
    if found is None and not layout.require_videos:
        layout.absent.append(vid)
        found = layout.root / layout.listed[vid] / f"{vid}.mp4"
    elif found is None:
        layout.problems.append(
            Problem(
                "error",
                "missing-video",
                f"{vid}: listed in the {layout.listed[vid]} list but not found under {layout.root}",
                vid,
                None,
            )
        )
        return None
    if len(candidates) > 1:
        rel = rel_posix(found, layout.root)
        others = ", ".join(rel_posix(c, layout.root) for c in candidates[1:])
        layout.problems.append(
            Problem(
                "warning",
                "duplicate-file",
                f"{vid}: using {rel}; also found {others}",
                vid,
                rel,
            )
        )
    return found


def _split_of(layout: _Layout, vid: str, rel: str) -> str | None:
    """The video's split: from the lists when there are any, else from its folders (an annotated
    video is a test video); ``None`` (with a problem) when unlisted or unknown."""
    if layout.listed:
        split = layout.listed.get(vid)
        if split is None:
            layout.problems.append(
                Problem(
                    "warning",
                    "unlisted-video",
                    f"{rel}: in neither split list; ignored",
                    vid,
                    rel,
                )
            )
        return split
    split = _split_from_folders(rel) or ("test" if vid in layout.annotated else None)
    if split is None:
        layout.problems.append(
            Problem(
                "error",
                "unknown-split",
                f"{rel}: cannot tell its split "
                "(no rgb.list/rgb_test.list and no train/test folder above it)",
                vid,
                rel,
            )
        )
    return split


def _test_intervals(layout: _Layout, vid: str, rel: str, label: int) -> tuple[Interval, ...] | None:
    """A test video's annotated intervals (``()`` for a normal one without a line), or ``None``
    (with an error) when the annotation contradicts the name's label."""
    ann_path = layout.ann_path
    if vid in layout.annotated:
        intervals, line = layout.annotated[vid]
        if label == 0:
            layout.problems.append(
                Problem(
                    "error",
                    "normal-with-intervals",
                    f"{ann_path.name}:{line}: normal video {vid} has anomalous intervals",
                    vid,
                    rel,
                )
            )
            return None
        return intervals
    if label == 1 and ann_path is not None:
        layout.problems.append(
            Problem(
                "error",
                "missing-annotation",
                f"{rel}: violent test video has no line in {ann_path.name}",
                vid,
                rel,
            )
        )
        return None
    return ()


def _check_annotated_are_tested(layout: _Layout, records: list[VideoRecord]) -> None:
    """An error for every annotated video that is not a test video (and has no error already)."""
    splits = {r.video_id: r.split for r in records}
    rejected = {p.video_id for p in layout.problems if p.severity == "error"}
    for vid, (_, line) in layout.annotated.items():
        if splits.get(vid) != "test" and vid not in rejected:
            state = (
                "a training video" if splits.get(vid) == "train" else "not found among the videos"
            )
            layout.problems.append(
                Problem(
                    "error",
                    "annotated-not-in-test",
                    f"{layout.ann_path.name}:{line}: {vid} is annotated but {state}",
                    vid,
                    None,
                )
            )


@register_dataset(
    "xd",
    summary=(
        "XD-Violence: 3954 train / 800 test videos, labels in the names, test frame annotations"
    ),
    layout=(
        "ROOT/<train folder>/*.mp4 and ROOT/<test folder>/*.mp4 "
        "(folder names containing 'train'/'test'), "
        "or rgb.list + rgb_test.list to define the split; "
        "annotations.txt (anywhere up to 3 levels below ROOT)"
    ),
)
def load_xd(
    root: Path,
    train_list: Path | None = None,
    test_list: Path | None = None,
    annotations: Path | None = None,
    require_videos: bool = True,
) -> DatasetIndex:
    """The ``xd`` adapter (see the module docstring)."""
    return load_xd_layout(Path(root), train_list, test_list, annotations, require_videos)
