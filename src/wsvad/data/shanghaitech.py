"""ShanghaiTech Campus, weakly-supervised re-split of Zhong et al. (CVPR 2019): 238 train, 199 test.

Checked against the real files in shared/data/benchmark-lists (see its SOURCES.md):

* ``SH_Train.txt`` / ``SH_Test.txt`` (GCN-Anomaly-Detection ``ShanghaiTech_new_split/``, same bytes as
  RTFM's ``list/``): one bare id per line (``01_0014``), no label column, no final newline. RTFM's
  ``shanghai-i3d-{train,test}-10crop.list`` (``.../01_0015_i3d.npy``) may be given instead.
* ``test_frame_mask/<id>.npy`` (RTFM ``list/test_frame_mask``): uint8 0/1 per frame, one file for each
  of the 107 anomalous videos (63 train + 44 test).
* Ids are ``<scene>_<clip>``: 4-digit clips are the original test videos (all anomalous), 3-digit
  clips the original training videos (all normal).

On disk the re-split mixes the two halves of the original release (``training/videos/01_001.avi``,
``testing/frames/01_0014/000.jpg``, ``testing/test_frame_mask/01_0014.npy``): anomalous videos of both
splits are JPEG frame folders, normal ones ``.avi`` files. wsvad therefore finds each id wherever it is
under the root, as a video file or as a folder of images.

Labels: abnormal when the mask has any anomalous frame; without a mask, the 4-digit clip id decides
(with a warning for test videos, which then lack frame ground truth: an error). Test intervals are the
half-open runs of ones of the mask (frame ``i`` of the mask is frame ``i`` of the folder, sorted by name).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from wsvad.data.groundtruth import intervals_from_mask
from wsvad.data.listfiles import find_file, index_media, read_lines, rel_posix, video_stem
from wsvad.data.records import DatasetIndex, Interval, Problem, VideoRecord
from wsvad.data.registry import register_dataset
from wsvad.data.ucf import absent_videos_warning

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
    )
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

    ``require_videos=False`` keeps listed ids that are not on disk (``path`` = ``ROOT/<id>.avi``), for
    imported features: labels and frame GT then come from the lists and masks alone.
    """
    problems: list[Problem] = []
    absent: list[str] = []
    masks = _find_masks(root, Path(mask_dir) if mask_dir is not None else None)
    if mask_dir is not None and not Path(mask_dir).is_dir():
        problems.append(
            Problem(
                "error", "missing-file", f"{mask_dir}: mask folder not found", path=str(mask_dir)
            )
        )
    media = index_media(root)
    records: list[VideoRecord] = []
    split_of: dict[str, str] = {}
    for split, given in (("train", train_list), ("test", test_list)):
        path = Path(given) if given is not None else find_file(root, LISTS[split])
        if path is None or not path.is_file():
            shown = path if path is not None else root / LISTS[split][0]
            problems.append(
                Problem(
                    "error", "missing-file", f"{shown}: {split} list not found", path=str(shown)
                )
            )
            continue
        for line in read_lines(path, problems) or []:
            vid = video_stem(line.text)
            where = f"{path}:{line.number}"
            match = _ID.match(vid)
            if not match:
                problems.append(
                    Problem(
                        "error",
                        "bad-list-line",
                        f"{where}: not a ShanghaiTech id (NN_NNN or NN_NNNN): {line.text!r}",
                        path=str(path),
                    )
                )
                continue
            if vid in split_of:
                kind, sev = (
                    ("duplicate", "warning")
                    if split_of[vid] == split
                    else ("train-test-overlap", "error")
                )
                problems.append(
                    Problem(
                        sev,
                        kind,
                        f"{where}: {vid} already listed in the {split_of[vid]} list",
                        vid,
                        str(path),
                    )
                )
                continue
            split_of[vid] = split
            found, candidates = media.find(vid)
            if found is None and not require_videos:
                absent.append(vid)
                found = root / f"{vid}.avi"
            elif found is None:
                problems.append(
                    Problem(
                        "error",
                        "missing-video",
                        f"{where}: {vid} is listed but neither {vid}.avi nor a frame folder {vid}/ is under {root}",
                        vid,
                        line.text,
                    )
                )
                continue
            if len(candidates) > 1:
                others = ", ".join(rel_posix(c, root) for c in candidates[1:])
                problems.append(
                    Problem(
                        "warning",
                        "duplicate-file",
                        f"{vid}: using {rel_posix(found, root)}; also found {others}",
                        vid,
                        rel_posix(found, root),
                    )
                )
            mask = None
            if vid in masks:
                try:
                    mask = np.load(masks[vid], allow_pickle=False)
                except (OSError, ValueError) as exc:
                    problems.append(
                        Problem(
                            "error",
                            "unreadable-mask",
                            f"{masks[vid]}: cannot read mask ({exc})",
                            vid,
                            str(masks[vid]),
                        )
                    )
                    continue
            label = int(bool(mask.any())) if mask is not None else int(len(match.group(2)) == 4)
            intervals: tuple[Interval, ...] | None = None
            if split == "test":
                if mask is not None:
                    intervals = intervals_from_mask(mask)
                elif label == 1:
                    problems.append(
                        Problem(
                            "error",
                            "missing-mask",
                            f"{vid}: abnormal test video has no test_frame_mask/{vid}.npy",
                            vid,
                            line.text,
                        )
                    )
                    continue
                else:
                    intervals = ()
            elif mask is None and label == 1:
                problems.append(
                    Problem(
                        "warning",
                        "missing-mask",
                        f"{vid}: no test_frame_mask/{vid}.npy; labelled abnormal from its 4-digit clip id",
                        vid,
                        line.text,
                    )
                )
            # A mask has one entry per frame of its video: an exact frame count without the video.
            n_frames = int(mask.size) if mask is not None else None
            records.append(
                VideoRecord(
                    vid,
                    found.resolve(),
                    rel_posix(found, root),
                    split,
                    label,
                    ("Anomaly",) if label else (),
                    intervals,
                    n_frames=n_frames,
                )
            )
    if absent:
        problems.append(absent_videos_warning(absent, root))
    return DatasetIndex("shanghaitech", root, records, problems, ["Normal", "Anomaly"])


@register_dataset(
    "shanghaitech",
    summary="ShanghaiTech weak split (Zhong et al.): 238 train / 199 test, labels from frame masks",
    layout=(
        "ROOT/**/<id>.avi or ROOT/**/<id>/<frames>.jpg for every id, SH_Train.txt, SH_Test.txt, "
        "**/test_frame_mask/<id>.npy (e.g. training/videos/, testing/frames/, testing/test_frame_mask/)"
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
