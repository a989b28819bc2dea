"""ShanghaiTech (weak split): the real split lists and the 107 real frame masks over a placeholder
layout."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pytest

from wsvad.data import load_dataset


@pytest.fixture(scope="module")
def sh_root(benchmark_lists, tmp_path_factory):
    """The common release layout: normals as training/videos/<id>.avi, anomalous videos as
    testing/frames/<id>/ (one empty placeholder jpg each), masks in testing/test_frame_mask/."""
    src = benchmark_lists / "shanghaitech"
    root = tmp_path_factory.mktemp("shanghaitech")
    shutil.copy(src / "SH_Train.txt", root / "SH_Train.txt")
    shutil.copy(src / "SH_Test.txt", root / "SH_Test.txt")
    shutil.copytree(src / "rtfm" / "test_frame_mask", root / "testing" / "test_frame_mask")
    for vid in (src / "SH_Train.txt").read_text().split() + (
        src / "SH_Test.txt"
    ).read_text().split():
        if len(vid.split("_")[1]) == 4:
            (root / "testing" / "frames" / vid).mkdir(parents=True)
            (root / "testing" / "frames" / vid / "000.jpg").touch()
        else:
            (root / "training" / "videos").mkdir(parents=True, exist_ok=True)
            (root / "training" / "videos" / f"{vid}.avi").touch()
    return root


def test_shanghaitech_real_split_labels_and_mask_intervals(sh_root, benchmark_lists):
    index = load_dataset("shanghaitech", sh_root)
    assert index.problems == []
    counts = Counter((r.split, r.label) for r in index.records)
    assert counts == {("train", 1): 63, ("train", 0): 175, ("test", 1): 44, ("test", 0): 155}
    assert index.class_names == ["Normal", "Anomaly"]
    by_id = index.by_id()
    rec = by_id["01_0015"]
    mask = np.load(benchmark_lists / "shanghaitech/rtfm/test_frame_mask/01_0015.npy")
    assert rec.split == "test" and rec.rel_path == "testing/frames/01_0015" and rec.path.is_dir()
    covered = np.zeros(mask.size, np.uint8)
    for start, end in rec.intervals:
        assert (
            mask[start] == 1
            and mask[end - 1] == 1
            and (start == 0 or mask[start - 1] == 0)
            and (end == mask.size or mask[end] == 0)
        )
        covered[start:end] = 1
    np.testing.assert_array_equal(covered, mask)
    assert (
        by_id["01_001"].split == "test"
        and by_id["01_001"].label == 0
        and by_id["01_001"].intervals == ()
    )
    assert by_id["01_001"].rel_path == "training/videos/01_001.avi"
    assert (
        by_id["01_0014"].split == "train"
        and by_id["01_0014"].intervals is None
        and by_id["01_0014"].classes == ("Anomaly",)
    )
    total = sum(e - s for r in index.split("test") for s, e in r.intervals)
    masks = [
        np.load(p)
        for p in sorted((sh_root / "testing/test_frame_mask").glob("*.npy"))
        if p.stem in {r.video_id for r in index.split("test")}
    ]
    assert total == sum(int(m.sum()) for m in masks)


def test_shanghaitech_rtfm_lists_give_the_same_records(sh_root, benchmark_lists):
    rtfm = benchmark_lists / "shanghaitech" / "rtfm"
    plain = {
        r.video_id: (r.split, r.label, r.intervals)
        for r in load_dataset("shanghaitech", sh_root).records
    }
    index = load_dataset(
        "shanghaitech",
        sh_root,
        train_list=rtfm / "shanghai-i3d-train-10crop.list",
        test_list=rtfm / "shanghai-i3d-test-10crop.list",
    )
    assert index.problems == []
    assert {r.video_id: (r.split, r.label, r.intervals) for r in index.records} == plain


def test_shanghaitech_errors(tmp_path):
    root = tmp_path / "sh"
    (root / "videos").mkdir(parents=True)
    for vid in ("01_001", "01_0014", "01_002"):
        (root / "videos" / f"{vid}.avi").touch()
    (root / "SH_Train.txt").write_text("01_001\r\n01_0014\r\nbogus\r\n01_002")
    (root / "SH_Test.txt").write_text("01_0014\n01_0099\n01_003\n01_002\n01_002")
    (root / "test_frame_mask").mkdir()  # a mask folder of its own, without 01_0014's mask
    index = load_dataset("shanghaitech", root)
    got = sorted((p.severity, p.kind, p.message) for p in index.problems)
    assert got == [
        (
            "error",
            "bad-list-line",
            f"{root}/SH_Train.txt:3: not a ShanghaiTech id (NN_NNN or NN_NNNN): 'bogus'",
        ),
        (
            "error",
            "missing-video",
            f"{root}/SH_Test.txt:2: 01_0099 is listed but neither 01_0099.avi nor a frame folder "
            f"01_0099/ is under {root}",
        ),
        (
            "error",
            "missing-video",
            f"{root}/SH_Test.txt:3: 01_003 is listed but neither 01_003.avi nor a frame folder "
            f"01_003/ is under {root}",
        ),
        (
            "error",
            "train-test-overlap",
            f"{root}/SH_Test.txt:1: 01_0014 already listed in the train list",
        ),
        (
            "error",
            "train-test-overlap",
            f"{root}/SH_Test.txt:4: 01_002 already listed in the train list",
        ),
        (
            "error",
            "train-test-overlap",
            f"{root}/SH_Test.txt:5: 01_002 already listed in the train list",
        ),
        (
            "warning",
            "missing-mask",
            "01_0014: no test_frame_mask/01_0014.npy; labelled abnormal from its 4-digit clip id",
        ),
    ]
    assert {r.video_id: r.label for r in index.records} == {"01_001": 0, "01_0014": 1, "01_002": 0}
    (root / "SH_Test.txt").write_text("01_0015\n")
    (root / "frames" / "01_0015").mkdir(parents=True)
    (root / "frames" / "01_0015" / "0001.jpg").touch()
    index = load_dataset("shanghaitech", root)
    assert [p.message for p in index.errors] == [
        f"{root}/SH_Train.txt:3: not a ShanghaiTech id (NN_NNN or NN_NNNN): 'bogus'",
        "01_0015: abnormal test video has no test_frame_mask/01_0015.npy",
    ]
