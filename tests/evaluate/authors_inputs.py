"""Seeded inputs of the ``--protocol authors`` golden test (not a test module).

``tools/authors_golden.py`` feeds these inputs to the authors' own evaluation code and stores the
figures in ``data/authors_golden.json``; ``test_eval_authors.py`` feeds the same inputs to
``wsvad evaluate --protocol authors``. Both load this module, so the inputs are defined once, and
the golden file records their sha256 so a change here (or in NumPy's generator) is caught.

Per video: a snippet count ``T`` and ``T`` scores in ``{0.01, ..., 0.99}`` (two decimals, so many
ties) that lean towards the anomalous snippets. Snippet counts follow each benchmark's features:
ShanghaiTech's anomalous videos have ``ceil(mask frames / 16)`` (what RTFM's ``gt-sh.npy`` holds),
its 155 normal ones share the 7809 normal snippets of ``gt-sh.npy``; UCF-Crime's cover every
annotated frame plus a random tail; XD-Violence's are ``floor((frames - 1) / 16)`` of a seeded
frame count past the last annotated frame (XDVioDet's ``make_gt.py`` rule).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

SEEDS = {"ucf": 2101, "shanghaitech": 2102, "xd": 2103}
SH_NORMAL_SNIPPETS = 7809  # (len(gt-sh.npy) - 16 x the anomalous snippets) / 16
# The official files each adapter reads from a lists-only root.
LIST_FILES = {
    "ucf": (
        "ucf_crime/Anomaly_Train.txt",
        "ucf_crime/Anomaly_Test.txt",
        "ucf_crime/Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
    ),
    "shanghaitech": (
        "shanghaitech/SH_Train.txt",
        "shanghaitech/SH_Test.txt",
        "shanghaitech/rtfm/test_frame_mask",
    ),
    "xd": ("xd_violence/rgb.list", "xd_violence/rgb_test.list", "xd_violence/annotations.txt"),
}
# The authors' test lists, in the order their code reads the videos.
AUTHORS_LISTS = {
    "ucf": "ucf_crime/rtfm/ucf-i3d-test.list",
    "shanghaitech": "shanghaitech/rtfm/shanghai-i3d-test-10crop.list",
    "xd": "xd_violence/rgb_test.list",
}


def lists_root(dataset: str, benchmark_lists: Path, dest: Path) -> Path:
    """A dataset root holding only the official lists and annotations (no video)."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in LIST_FILES[dataset]:
        src = benchmark_lists / rel
        if src.is_dir():
            shutil.copytree(src, dest / src.name)
        else:
            shutil.copy(src, dest / src.name)
    return dest


def authors_order(dataset: str, benchmark_lists: Path) -> list[str]:
    """Video ids in the order of the authors' test list."""
    text = (benchmark_lists / AUTHORS_LISTS[dataset]).read_text(encoding="utf-8")
    names = [line.strip().replace("\\", "/").rsplit("/", 1)[-1] for line in text.splitlines()]
    if dataset == "xd":
        return [n[: -len("__0.npy")] for n in names if n.endswith("__0.npy")]
    return [n[: -len("_i3d.npy")] for n in names if n]


def labelled_test_records(dataset: str, root: Path) -> dict:
    """The adapter's test records of a lists-only root, by id."""
    from wsvad.data.check import load_labels_only

    return {r.video_id: r for r in load_labels_only(dataset, root).split("test")}


def make_inputs(dataset: str, benchmark_lists: Path, root: Path) -> tuple[dict, dict]:
    """``(scores, frames)``: snippet scores per video id (float32, authors' list order) and, for
    XD-Violence, the frame count its videos are given (what ``cv2`` would report)."""
    rng = np.random.default_rng(SEEDS[dataset])
    records = labelled_test_records(dataset, root)
    order = authors_order(dataset, benchmark_lists)
    ends = {vid: max((e for _, e in records[vid].intervals), default=0) for vid in order}
    counts, frames = {}, {}
    if dataset == "shanghaitech":
        normal = [vid for vid in order if records[vid].label == 0]
        shares = 2 + rng.multinomial(
            SH_NORMAL_SNIPPETS - 2 * len(normal), [1 / len(normal)] * len(normal)
        )
        counts = dict(zip(normal, (int(n) for n in shares), strict=True))
        for vid in order:
            if records[vid].label == 1:
                counts[vid] = -(-int(records[vid].n_frames) // 16)
    elif dataset == "ucf":
        for vid in order:
            if records[vid].label == 1:
                counts[vid] = -(-ends[vid] // 16) + int(rng.integers(0, 30))
            else:
                counts[vid] = int(rng.integers(30, 400))
    else:
        for vid in order:
            extra = int(rng.integers(17, 500)) if records[vid].label == 1 else 0
            frames[vid] = ends[vid] + extra if extra else int(rng.integers(300, 6000))
            counts[vid] = (frames[vid] - 1) // 16
    scores = {}
    for vid in order:
        starts = np.arange(counts[vid]) * 16
        anomalous = np.zeros(counts[vid], dtype=bool)
        for s, e in records[vid].intervals:
            anomalous |= (starts + 16 > s) & (starts < e)
        raw = 0.3 * anomalous + 0.7 * rng.random(counts[vid])
        scores[vid] = np.clip(np.round(raw, 2), 0.01, 0.99).astype(np.float32)
    return scores, frames


def digest(scores: dict, frames: dict) -> str:
    """sha256 of the inputs (ids, scores, frame counts), recorded with the golden figures."""
    h = hashlib.sha256()
    for vid in sorted(scores):
        h.update(vid.encode() + b"\0" + scores[vid].tobytes() + str(frames.get(vid)).encode())
    return h.hexdigest()
