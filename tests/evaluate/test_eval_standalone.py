"""``wsvad evaluate --scores``: any model's scores against a dataset, frame counts probed from
videos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wsvad.cli import run as cli
from wsvad.evaluate import sources

# a: 48 frames, anomalous [16, 48); b: 32 frames normal; c: 32 frames, anomalous [0, 16).
LABELS = "video,label,class,intervals\na.mp4,1,Fighting,16-48\nb.mp4,0,,\nc.mp4,1,Arson,0-16\n"
SCORES = {"a": [0.1, 0.2, 0.9], "b": [0.2, 0.3], "c": [0.8, 0.1]}
# Positives: a 16 x .2 + 16 x .9, c 16 x .8; negatives: a 16 x .1, b 16 x .2 + 16 x .3, c 16 x .1.
# A .2 positive beats 32 negatives and ties 16 (40 per frame); .9 and .8 beat all 64.
AUC = (16 * 40 + 32 * 64) / (48 * 64)


@pytest.fixture
def dataset(tmp_path, make_video, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    root = tmp_path / "videos"
    for name, n in (("a", 48), ("b", 32), ("c", 32)):
        make_video(f"videos/{name}.mp4", n_frames=n, size=(32, 24))
    (root / "labels.csv").write_text(LABELS)
    return root


def _npz(path, scores):
    np.savez(path, **{k: np.asarray(v, dtype=np.float32) for k, v in scores.items()})
    return path


def _evaluate(tmp_path, scores_file, root, *extra):
    return cli(
        [
            "evaluate",
            "--scores",
            str(scores_file),
            "--dataset",
            "folder",
            "--root",
            str(root),
            "--out",
            str(tmp_path / "eval"),
            *extra,
        ]
    )


def test_npz_scores_evaluate_to_hand_computed_auc(tmp_path, dataset, capsys):
    code = _evaluate(tmp_path, _npz(tmp_path / "s.npz", SCORES), dataset, "--no-plots")
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["metrics"]["auc"] == pytest.approx(AUC)
    assert report["metrics"]["n_frames"] == 112  # probed: 48 + 32 + 32
    assert report["protocol"]["alignment"] == "true-frames"
    assert report["model_selection"] == "external scores"
    assert f"{100 * AUC:.2f}" in out and "alignment=true-frames" in out


def test_csv_scores_equal_npz_scores(tmp_path, dataset):
    rows = ["video,snippet,score"] + [
        f"{vid},{i},{s}"
        for vid, values in SCORES.items()
        for i, s in reversed(list(enumerate(values)))
    ]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    assert (
        _evaluate(tmp_path, tmp_path / "s.csv", dataset, "--no-plots", "--alignment", "rtfm") == 0
    )
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # rtfm: every video is exactly T x 16 frames here, so the figure equals the true-frames one.
    assert report["metrics"]["auc"] == pytest.approx(AUC)
    assert report["protocol"]["alignment"] == "rtfm"


def test_mismatched_videos_are_listed_and_exit_3(tmp_path, dataset, capsys):
    scores = {"a": SCORES["a"], "b": SCORES["b"], "Fighting/zzz.mp4": [0.5]}
    code = _evaluate(tmp_path, _npz(tmp_path / "s.npz", scores), dataset, "--no-plots")
    err = capsys.readouterr().err
    assert code == 3
    assert "2 videos not evaluated as given" in err
    assert "Fighting/zzz.mp4" in err and "not a test video" in err
    assert "no scores" in err and "test video without scores" in err
    assert "evaluated 2 of 3 test videos" in err
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["coverage"]["matched"] == 2
    assert {(p["video_id"], p["kind"]) for p in report["coverage"]["problems"]} == {
        ("Fighting/zzz.mp4", "not a test video"),
        ("c", "no scores"),
    }


def test_nothing_matching_exits_1_with_the_table(tmp_path, dataset, capsys):
    code = _evaluate(tmp_path, _npz(tmp_path / "s.npz", {"x": [0.1], "y": [0.2]}), dataset)
    err = capsys.readouterr().err
    assert code == 1
    assert "no scored video matches a test video of the dataset" in err
    assert "not a test video" in err and "x" in err
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_wrong_snippet_count_is_a_problem_not_a_crash(tmp_path, dataset, capsys):
    scores = dict(SCORES, a=[0.5] * 20)
    assert _evaluate(tmp_path, _npz(tmp_path / "s.npz", scores), dataset, "--no-plots") == 3
    err = capsys.readouterr().err
    assert "snippet count" in err and "20 snippets for 48 frames" in err


def test_bad_csv_names_file_and_reason(tmp_path, dataset, capsys):
    (tmp_path / "s.csv").write_text("name,score\na,0.1\n")
    assert _evaluate(tmp_path, tmp_path / "s.csv", dataset) == 1
    assert (
        f"error: {tmp_path / 's.csv'}: a scores CSV needs the header video,snippet,score"
        in capsys.readouterr().err
    )
    (tmp_path / "s.csv").write_text("video,snippet,score\na,0,0.1\na,2,0.3\n")
    assert _evaluate(tmp_path, tmp_path / "s.csv", dataset) == 1
    assert (
        "video 'a': snippets must run 0..N-1 without gaps (missing [1])" in capsys.readouterr().err
    )


def test_scores_without_dataset_is_a_config_error(tmp_path, capsys):
    assert cli(["evaluate", "--scores", str(tmp_path / "s.npz"), "--out", str(tmp_path / "e")]) == 1
    assert "--scores needs --dataset and --root" in capsys.readouterr().err


def test_frame_counts_are_cached(tmp_path, dataset, monkeypatch):
    _evaluate(tmp_path, _npz(tmp_path / "s.npz", SCORES), dataset, "--no-plots")
    cache = json.loads((tmp_path / "cache" / "wsvad" / "frame-counts.json").read_text())
    assert sorted(e["frames"] for e in cache.values()) == [32, 32, 48]

    def no_probe(path):
        raise AssertionError(f"{path} probed again")

    monkeypatch.setattr(sources, "probe_frame_count", no_probe)
    assert _evaluate(tmp_path, _npz(tmp_path / "s.npz", SCORES), dataset, "--no-plots") == 0


def test_normalise_id_strips_folders_and_suffixes():
    assert sources.normalise_id("Abuse/Abuse028_x264.mp4") == "Abuse028_x264"
    assert sources.normalise_id("G:\\feats\\Abuse028_x264_i3d.npy") == "Abuse028_x264"
    assert sources.normalise_id("01_0014") == "01_0014"
