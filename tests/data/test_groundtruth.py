"""Frame labels and the two snippet-to-frame alignment rules, on hand-computed cases and RTFM's
gt-sh.npy."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from wsvad.data.groundtruth import (
    DEFAULT_ALIGNMENT,
    frame_labels,
    intervals_from_mask,
    snippet_scores_to_frames,
)


def test_frame_labels_half_open_and_clipped_with_warning(caplog):
    assert frame_labels([(2, 4), (6, 9)], 8, "Shooting015_x264").tolist() == [
        0,
        0,
        1,
        1,
        0,
        0,
        1,
        1,
    ]
    assert caplog.records[-1].levelno == logging.WARNING
    assert (
        caplog.records[-1].getMessage()
        == "Shooting015_x264: interval [6, 9) ends past the last frame (8 frames); clipped"
    )
    assert frame_labels((), 3).tolist() == [0, 0, 0]
    assert frame_labels([(5, 7)], 4).tolist() == [0, 0, 0, 0]  # wholly outside: clipped away
    assert frame_labels([(0, 1)], 2).dtype == np.uint8


def test_frame_labels_refuses_missing_or_invalid_annotations():
    with pytest.raises(
        ValueError, match=r"^Abuse001_x264: no frame-level annotation \(training videos"
    ):
        frame_labels(None, 10, "Abuse001_x264")
    with pytest.raises(ValueError, match=r"^video: invalid interval \[5, 3\)$"):
        frame_labels([(5, 3)], 10)


def test_true_frames_repeats_each_score_and_extends_or_cuts_the_tail():
    scores = np.array([0.25, 0.5, 0.75])
    assert DEFAULT_ALIGNMENT == "true-frames"
    frames, gt = snippet_scores_to_frames(scores, 40)  # 16 + 16 + 8 frames
    assert frames.tolist() == [0.25] * 16 + [0.5] * 16 + [0.75] * 8 and gt is None
    frames, _ = snippet_scores_to_frames(
        scores, 56
    )  # 8 tail frames past the last snippet take its score
    assert frames.tolist() == [0.25] * 16 + [0.5] * 16 + [0.75] * 24
    frames, _ = snippet_scores_to_frames(scores, 5, snippet_len=4, stride=2)  # overlapping snippets
    assert frames.tolist() == [0.25, 0.25, 0.5, 0.5, 0.75]
    labels = frame_labels([(10, 20)], 40)
    assert snippet_scores_to_frames(scores, 40, gt=labels)[1] is labels


def test_rtfm_repeats_16x_and_cuts_or_pads_the_ground_truth_with_its_last_value():
    scores = np.array([0.25, 0.75])
    frames, gt = snippet_scores_to_frames(scores, 20, rule="rtfm", gt=frame_labels([(10, 20)], 20))
    assert frames.tolist() == [0.25] * 16 + [0.75] * 16
    assert gt.tolist() == [0] * 10 + [1] * 22  # 20 true frames, then 12 copies of the last label
    frames, gt = snippet_scores_to_frames(scores, 40, rule="rtfm", gt=frame_labels([(30, 40)], 40))
    assert (
        frames.size == 32 and gt.tolist() == [0] * 30 + [1] * 2
    )  # the 8 frames past 32 are dropped


def test_alignment_errors_name_the_problem():
    with pytest.raises(ValueError, match="rule 'rtfm' needs the frame ground truth"):
        snippet_scores_to_frames(np.ones(2), 20, rule="rtfm")
    with pytest.raises(
        ValueError, match="unknown alignment rule 'sultani'; known: true-frames, rtfm"
    ):
        snippet_scores_to_frames(np.ones(2), 20, rule="sultani")
    with pytest.raises(ValueError, match="gt has 19 frames but the video has 20"):
        snippet_scores_to_frames(np.ones(2), 20, gt=np.zeros(19))
    with pytest.raises(ValueError, match=r"non-empty 1-D array, got shape \(0,\)"):
        snippet_scores_to_frames(np.array([]), 20)


def test_rtfm_rule_reproduces_rtfms_gt_sh_from_the_real_masks(benchmark_lists):
    """RTFM's gt-sh.npy = the 44 abnormal test masks in list order, each padded to 16 x snippets."""
    sh = benchmark_lists / "shanghaitech"
    reference = np.load(sh / "rtfm" / "gt-sh.npy")
    names = [
        line.rsplit("/", 1)[1][: -len("_i3d.npy")]
        for line in (sh / "rtfm" / "shanghai-i3d-test-10crop.list").read_text().split()
    ]
    rebuilt = []
    for name in names[:44]:
        mask = np.load(sh / "rtfm" / "test_frame_mask" / f"{name}.npy")
        labels = frame_labels(intervals_from_mask(mask), mask.size, name)
        n_snippets = -(-mask.size // 16)
        rebuilt.append(
            snippet_scores_to_frames(np.zeros(n_snippets), mask.size, rule="rtfm", gt=labels)[1]
        )
    rebuilt = np.concatenate(rebuilt)
    assert rebuilt.size == 17968
    np.testing.assert_array_equal(rebuilt, reference[:17968])
    assert reference[17968:].sum() == 0


def test_intervals_from_mask_runs():
    assert intervals_from_mask(np.array([1, 1, 0, 0, 1, 0, 1, 1])) == ((0, 2), (4, 5), (6, 8))
    assert intervals_from_mask(np.zeros(4)) == ()
