"""ShanghaiTech Campus, weakly-supervised re-split of Zhong et al. (CVPR 2019): 238 train, 199 test.

Checked against the real files in wsvad/data/benchmark_lists (see its SOURCES.md):

* ``SH_Train.txt`` / ``SH_Test.txt`` (GCN-Anomaly-Detection ``ShanghaiTech_new_split/``, same
  bytes as RTFM's ``list/``): one bare id per line (``01_0014``), no label column, no final
  newline. RTFM's ``shanghai-i3d-{train,test}-10crop.list`` (``.../01_0015_i3d.npy``) may be given
  instead.
* ``test_frame_mask/<id>.npy`` (RTFM ``list/test_frame_mask``): uint8 0/1 per frame, one file for
  each of the 107 anomalous videos (63 train + 44 test).
* Ids are ``<scene>_<clip>``: 4-digit clips are the original test videos (all anomalous), 3-digit
  clips the original training videos (all normal).

On disk the re-split mixes the two halves of the original release
(``training/videos/01_001.avi``, ``testing/frames/01_0014/000.jpg``,
``testing/test_frame_mask/01_0014.npy``): anomalous videos of both splits are JPEG frame folders,
normal ones ``.avi`` files. wsvad therefore finds each id wherever it is under the root, as a video
file or as a folder of images.

Labels: abnormal when the mask has any anomalous frame; without a mask, the 4-digit clip id decides
(with a warning for a training video; a test video without its mask lacks frame ground truth: an
error). Test intervals are the half-open runs of ones of the mask (frame ``i`` of the mask is frame
``i`` of the folder, sorted by name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsvad.data.groundtruth import intervals_from_mask
from wsvad.data.listfiles import (
    MediaIndex,
    absent_videos_warning,
    index_media,
    read_lines,
    rel_posix,
    video_stem,
)
from wsvad.data.packaged import official_file, packaged_mask_dir
from wsvad.data.records import DatasetIndex, Interval, Problem, VideoRecord
from wsvad.data.registry import register_dataset

_ID = re.compile(r"^(\d{2})_(\d{3,4})$")
LISTS = {
    "train": ("SH_Train.txt", "shanghai-i3d-train-10crop.list"),
    "test": ("SH_Test.txt", "shanghai-i3d-test-10crop.list"),
}


def _find_masks(root: Path, mask_dir: Path | None) -> dict[str, Path]:
    folders = (
        [mask_dir]
        if mask_dir is not None
        else sorted(p for p in root.rglob("test_frame_mask") if p.is_dir())
    ) or [packaged_mask_dir()]  # none under the root: the official masks shipped with wsvad
    masks: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.npy")):
            masks.setdefault(path.stem, path)
    return masks


def load_shanghaitech_layout(
    root: Path,
    train_list: Path | str | None = None,
    test_list: Path | str | None = None,
    mask_dir: Path | str | None = None,
    require_videos: bool = True,
) -> DatasetIndex:
    """Parse a ShanghaiTech (weak split) layout; see the module docstring.

    ``require_videos=False`` keeps listed ids that are not on disk (``path`` = ``ROOT/<id>.avi``),
    for imported features: labels and frame GT then come from the lists and masks alone.
    """
    problems: list[Problem] = []
    masks = _find_masks(root, Path(mask_dir) if mask_dir is not None else None)
    if mask_dir is not None and not Path(mask_dir).is_dir():
        problems.append(
            Problem(
                "error", "missing-file", f"{mask_dir}: mask folder not found", path=str(mask_dir)
            )
        )
    layout = _Layout(root, masks, index_media(root), require_videos, problems)
    records: list[VideoRecord] = []
    for split, given in (("train", train_list), ("test", test_list)):
        path = (
            Path(given) if given is not None else official_file(root, "shanghaitech", LISTS[split])
        )
        if path is None or not path.is_file():
            shown = path if path is not None else root / LISTS[split][0]
            problems.append(
                Problem(
                    "error", "missing-file", f"{shown}: {split} list not found", path=str(shown)
                )
            )
            continue
        for line in read_lines(path, problems) or []:
            record = _listed_record(layout, split, f"{path}:{line.number}", line.text, path)
            if record is not None:
                records.append(record)
    if layout.absent:
        problems.append(absent_videos_warning(layout.absent, root))
    return DatasetIndex("shanghaitech", root, records, problems, ["Normal", "Anomaly"])


@dataclass
class _Layout:
    """A ShanghaiTech layout being parsed: what each listed id is checked against, where problems
    go."""

    root: Path
    masks: dict[str, Path]  # id -> its test_frame_mask file
    media: MediaIndex
    require_videos: bool
    problems: list[Problem]
    split_of: dict[str, str] = field(default_factory=dict)  # ids listed so far -> their split
    absent: list[str] = field(default_factory=list)  # listed ids kept without their video


def _listed_record(
    layout: _Layout, split: str, where: str, text: str, list_path: Path
) -> VideoRecord | None:
    """The record of one list line, or ``None`` (with a problem) when it cannot be used."""
    match = _new_id(layout, split, where, text, list_path)
    if match is None:
        return None
    vid = match.string
    found = _video_path(layout, vid, where, text)
    if found is None:
        return None
    mask = None
    if vid in layout.masks:
        mask = _load_mask(layout, vid)
        if mask is None:
            return None
    # Without a mask, the clip id decides: 4-digit clips are the original (anomalous) test videos.
    label = int(bool(mask.any())) if mask is not None else int(len(match.group(2)) == 4)
    intervals: tuple[Interval, ...] | None = None
    if split == "test":
        intervals = _test_intervals(layout, vid, text, mask, label)
        if intervals is None:
            return None
    elif mask is None and label == 1:
        layout.problems.append(
            Problem(
                "warning",
                "missing-mask",
                f"{vid}: no test_frame_mask/{vid}.npy; labelled abnormal from its 4-digit clip id",
                vid,
                text,
            )
        )
    # A mask has one entry per frame of its video: an exact frame count without the video.
    n_frames = int(mask.size) if mask is not None else None
    return VideoRecord(
        vid,
        found.resolve(),
        rel_posix(found, layout.root),
        split,
        label,
        ("Anomaly",) if label else (),
        intervals,
        n_frames=n_frames,
    )


def _new_id(
    layout: _Layout, split: str, where: str, text: str, list_path: Path
) -> re.Match[str] | None:
    """The id of a list line, matched as ``<scene>_<clip>`` and recorded in ``layout.split_of``;
    ``None`` (with a problem) for a line that is not an id or an id listed before."""
    vid = video_stem(text)
    match = _ID.match(vid)
    if not match:
        layout.problems.append(
            Problem(
                "error",
                "bad-list-line",
                f"{where}: not a ShanghaiTech id (NN_NNN or NN_NNNN): {text!r}",
                path=str(list_path),
            )
        )
        return None
    if vid in layout.split_of:
        listed_in = layout.split_of[vid]
        message = f"{where}: {vid} already listed in the {listed_in} list"
        if listed_in == split:
            problem = Problem("warning", "duplicate", message, vid, str(list_path))
        else:
            problem = Problem("error", "train-test-overlap", message, vid, str(list_path))
        layout.problems.append(problem)
        return None
    layout.split_of[vid] = split
    return match


def _video_path(layout: _Layout, vid: str, where: str, text: str) -> Path | None:
    """The id's video file or frame folder, where it would be when it may be absent, or ``None``
    (with an error) when it must be on disk and is not."""
    found, candidates = layout.media.find(vid)
    if found is None and not layout.require_videos:
        layout.absent.append(vid)
        found = layout.root / f"{vid}.avi"
    elif found is None:
        layout.problems.append(
            Problem(
                "error",
                "missing-video",
                f"{where}: {vid} is listed but neither {vid}.avi nor a frame folder {vid}/ "
                f"is under {layout.root}",
                vid,
                text,
            )
        )
        return None
    if len(candidates) > 1:
        others = ", ".join(rel_posix(c, layout.root) for c in candidates[1:])
        layout.problems.append(
            Problem(
                "warning",
                "duplicate-file",
                f"{vid}: using {rel_posix(found, layout.root)}; also found {others}",
                vid,
                rel_posix(found, layout.root),
            )
        )
    return found


def _load_mask(layout: _Layout, vid: str) -> np.ndarray | None:
    """The id's frame mask, or ``None`` (with an error) when its file cannot be read."""
    try:
        return np.load(layout.masks[vid], allow_pickle=False)
    except (OSError, ValueError) as exc:
        layout.problems.append(
            Problem(
                "error",
                "unreadable-mask",
                f"{layout.masks[vid]}: cannot read mask ({exc})",
                vid,
                str(layout.masks[vid]),
            )
        )
        return None


def _test_intervals(
    layout: _Layout, vid: str, text: str, mask: np.ndarray | None, label: int
) -> tuple[Interval, ...] | None:
    """A test video's anomalous frames: the runs of ones of its mask, ``()`` for a normal video
    without one, or ``None`` (with an error) for an abnormal video without one."""
    if mask is not None:
        return intervals_from_mask(mask)
    if label == 1:
        layout.problems.append(
            Problem(
                "error",
                "missing-mask",
                f"{vid}: abnormal test video has no test_frame_mask/{vid}.npy",
                vid,
                text,
            )
        )
        return None
    return ()


@register_dataset(
    "shanghaitech",
    summary="ShanghaiTech weak split (Zhong et al.): 238 train / 199 test, labels from frame masks",
    layout=(
        "ROOT/**/<id>.avi or ROOT/**/<id>/<frames>.jpg for every id, SH_Train.txt, SH_Test.txt, "
        "**/test_frame_mask/<id>.npy "
        "(e.g. training/videos/, testing/frames/, testing/test_frame_mask/)"
    ),
)
def load_shanghaitech(
    root: Path,
    train_list: Path | None = None,
    test_list: Path | None = None,
    mask_dir: Path | None = None,
    require_videos: bool = True,
) -> DatasetIndex:
    """The ``shanghaitech`` adapter (see the module docstring)."""
    return load_shanghaitech_layout(Path(root), train_list, test_list, mask_dir, require_videos)
