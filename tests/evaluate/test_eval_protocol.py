"""The protocol around the curves: alignment rules, pooling, the RTFM cross-check, per-class AUC."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from sklearn.metrics import auc, roc_curve

from wsvad.evaluate.protocol import Protocol, VideoTruth, align_video, compute_metrics, pool

# Video A (abnormal): 40 frames, anomalous [20, 40), two snippets scored .2 and .9.
# Video B (normal): 20 frames, two snippets .3 and .5 (the second runs past the end: tail "pad").
A = VideoTruth("A", 40, 1, ("Fighting",), ((20, 40),))
B = VideoTruth("B", 20, 0)
SCORES = {"A": np.array([0.2, 0.9]), "B": np.array([0.3, 0.5])}


def _metrics(protocol: Protocol, truths=(A, B), scores=SCORES, **kw) -> dict:
    videos = [align_video(scores[t.video_id], t, protocol) for t in truths]
    return compute_metrics(pool(videos), protocol, **kw)


def test_rtfm_alignment_hand_computed():
    # RTFM: scores x16 -> A 32 frames (GT cut: ones on 20..31 = 12 positives, all .9), B 32 frames
    # (GT padded with its last label 0). Negatives: A 16 x .2 + 4 x .9, B 16 x .3 + 16 x .5.
    # Positives beat 48 of 52 negatives and tie 4: AUC = (48 + 4/2) / 52.
    m = _metrics(Protocol(alignment="rtfm"))
    assert m["auc"] == pytest.approx(50 / 52)
    assert m["n_frames"] == 64 and m["n_anomalous_frames"] == 12


def test_rtfm_alignment_equals_rtfm_code_path():
    # RTFM's test_10crop.py: pred = np.repeat(concatenated snippet scores, 16); gt = its gt-*.npy
    # (built by make_gt_*.py: T*16 labels per video); roc_curve + auc. Rebuilt here from scratch.
    gt = [0.0] * 20 + [1.0] * 12 + [0.0] * 32
    pred = np.repeat(np.array([0.2, 0.9, 0.3, 0.5]), 16)
    fpr, tpr, _ = roc_curve(gt, pred)
    assert auc(fpr, tpr) == pytest.approx(50 / 52)
    assert _metrics(Protocol(alignment="rtfm"))["auc"] == pytest.approx(auc(fpr, tpr))


def test_true_frames_alignment_hand_computed():
    # True frame counts: A frames 0-15 -> .2, 16-39 -> .9 (20 positives at .9; negatives 16 x .2, 4
    # x .9); B has only 20 frames: 16 x .3, 4 x .5. AUC = (36 + 4/2) / 40.
    m = _metrics(Protocol(alignment="true-frames"))
    assert m["auc"] == pytest.approx(38 / 40)
    assert m["n_frames"] == 60 and m["n_anomalous_frames"] == 20


def test_rtfm_pads_gt_with_last_label():
    # 28 frames, anomalous to the end; T=2 -> 32 frames, the 4 padded frames copy the last label
    # (1).
    v = align_video(
        np.array([0.1, 0.8]),
        VideoTruth("C", 28, 1, ("Arson",), ((20, 28),)),
        Protocol(alignment="rtfm"),
    )
    assert v.gt.tolist() == [0] * 20 + [1] * 12
    assert v.scores.tolist() == pytest.approx([0.1] * 16 + [0.8] * 16)


def test_far_and_abnormal_only_auc():
    m = _metrics(Protocol(alignment="true-frames", threshold=0.4))
    # Normal video B frames: 16 x .3 (below .4) and 4 x .5 -> FAR 4/20.
    assert m["far"] == pytest.approx(4 / 20)
    # Only A: positives 20 x .9 vs negatives 16 x .2 + 4 x .9 -> (16 + 2) / 20.
    assert m["auc_abnormal_only"] == pytest.approx(18 / 20)


def test_per_class_auc_uses_class_videos_plus_normal_videos():
    c = VideoTruth("C", 32, 1, ("Arson",), ((0, 16),))
    scores = dict(SCORES, C=np.array([0.4, 0.1]))
    truths = (A, B, c)
    names = ["Normal", "Arson", "Fighting", "Shooting"]
    m = _metrics(Protocol(), truths, scores, class_names=names)
    # Fighting = A + B -> 38/40 as above. Arson = C + B: positives 16 x .4 vs negatives C 16 x .1,
    # B 16 x .3 + 4 x .5 -> (32 + 0) / 36. Shooting has no test video and is left out.
    assert m["per_class_auc"] == {
        "Arson": pytest.approx(32 / 36),
        "Fighting": pytest.approx(38 / 40),
    }
    only = _metrics(Protocol(class_negatives="class_only"), truths, scores, class_names=names)
    # class_only: Arson = C alone -> positives .4 vs 16 x .1 -> 1.0; Fighting = A alone -> 18/20.
    assert only["per_class_auc"] == {
        "Arson": pytest.approx(1.0),
        "Fighting": pytest.approx(18 / 20),
    }


def test_mean_average_accuracy_from_predicted_classes():
    c = VideoTruth("C", 32, 1, ("Arson", "Fighting"), ((0, 16),))
    scores = dict(SCORES, C=np.array([0.4, 0.1]))
    names = ["Normal", "Arson", "Fighting"]
    # A (Fighting) predicted Arson: wrong; B predicted Normal: right; C (Arson+Fighting) predicted
    # Fighting: right (any of its classes) and counted under Fighting -> Normal 1, Fighting 1/2.
    m = _metrics(
        Protocol(), (A, B, c), scores, class_names=names, predicted_class={"A": 1, "B": 0, "C": 2}
    )
    assert m["per_class_accuracy"] == {"Normal": 1.0, "Fighting": 0.5}
    assert m["mAA"] == pytest.approx(0.75)


def test_undefined_figures_are_none():
    m = _metrics(Protocol(), (B,), {"B": SCORES["B"]})
    assert m["auc"] is None and m["ap_sklearn"] is None and m["auc_abnormal_only"] is None
    assert m["far"] == pytest.approx(4 / 20)


def test_protocol_description_names_the_rule():
    assert "alignment=rtfm" in Protocol(alignment="rtfm").describe()
    assert "repeated 16x" in Protocol(alignment="rtfm").describe()
    assert "true frame count" in Protocol().describe()
    assert Protocol().to_json()["alignment"] == "true-frames"


@pytest.mark.parametrize("module", ["metrics", "plots", "sources", "score_video"])
def test_docstring_examples_hold(module):
    import importlib

    failures, attempted = doctest.testmod(
        importlib.import_module(f"wsvad.evaluate.{module}"), raise_on_error=False
    )
    assert failures == 0 and attempted > 0


def test_rtfm_alignment_rebuilds_rtfm_gt_sh_npy(benchmark_lists):
    # RTFM's own gt-sh.npy concatenates, in its test-list order, each anomalous video's frame mask
    # padded with its last label to T x 16 frames. The rtfm rule applied to the same masks (as
    # intervals, with T = ceil(frames / 16) snippets) must give back those 17,968 labels exactly.
    from wsvad.data.groundtruth import intervals_from_mask

    folder = benchmark_lists / "shanghaitech" / "rtfm"
    lines = (
        (folder / "shanghai-i3d-test-10crop.list").read_text().splitlines()[:44]
    )  # the anomalous ones
    ids = [line.strip().rsplit("/", 1)[1][: -len("_i3d.npy")] for line in lines]
    rebuilt = []
    for vid in ids:
        mask = np.load(folder / "test_frame_mask" / f"{vid}.npy")
        truth = VideoTruth(vid, len(mask), 1, (), intervals_from_mask(mask))
        rebuilt.append(
            align_video(np.zeros(-(-len(mask) // 16)), truth, Protocol(alignment="rtfm")).gt
        )
    official = np.load(folder / "gt-sh.npy")
    rebuilt = np.concatenate(rebuilt)
    assert len(rebuilt) == 17968
    assert np.array_equal(rebuilt, official[: len(rebuilt)])
    assert not official[len(rebuilt) :].any()  # the 155 normal videos follow, all 0
