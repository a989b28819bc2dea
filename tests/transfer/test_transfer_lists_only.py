"""Published features with the official lists but no videos: import -> train -> evaluate, and the
adapters' ``require_videos=False`` on the real list files (shared/data/benchmark-lists)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.data import load_dataset
from wsvad.errors import EXIT_OK, EXIT_PARTIAL, WsvadError
from wsvad.evaluate.sources import truths_from_store
from wsvad.pipeline.store import FeatureStore

UCF_OFFICIAL = (
    "Anomaly_Train.txt",
    "Anomaly_Test.txt",
    "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
)
TRAIN = [
    "Abuse001_x264",
    "Arrest002_x264",
    "Arson001_x264",
    "Normal_Videos001_x264",
    "Normal_Videos002_x264",
    "Normal_Videos004_x264",
]
TEST = {
    "Abuse028_x264": 20,
    "Normal_Videos_003_x264": 10,
}  # id -> T snippets of the fake feature file


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def _lists_root(kit, tmp_path: Path, names=UCF_OFFICIAL) -> Path:
    root = tmp_path / "UCF_lists"
    root.mkdir()
    for name in names:
        shutil.copy(kit.lists / "ucf_crime" / name, root / Path(name).name)
    return root


def _rtfm_files(kit, tmp_path: Path) -> tuple[Path, Path, Path]:
    """Lines of RTFM's real CRLF lists for the chosen videos, and tiny [T, 10, 8] files; abnormal
    videos carry +1 on feature 0 so that a few steps of training can tell them apart."""
    feats = tmp_path / "feats"
    feats.mkdir()
    out = []
    for listed, wanted in (("ucf-i3d.list", TRAIN), ("ucf-i3d-test.list", list(TEST))):
        lines = [
            line
            for line in kit.raw_lines(kit.lists / "ucf_crime/rtfm" / listed)
            if kit.entry_name(line)[: -len("_i3d.npy")] in wanted
        ]
        assert len(lines) == len(wanted)
        path = tmp_path / listed
        path.write_bytes(b"".join(lines))
        for i, line in enumerate(lines):
            vid = kit.entry_name(line)[: -len("_i3d.npy")]
            values = (
                np.random.default_rng(i)
                .standard_normal((TEST.get(vid, 12 + i), 10, 8))
                .astype(np.float32)
                * 0.1
            )
            values[..., 0] += 0.0 if vid.startswith("Normal") else 1.0
            np.save(feats / kit.entry_name(line), values)
        out.append(path)
    return out[0], out[1], feats


def test_adapters_keep_listed_videos_without_files(kit, tmp_path):
    root = _lists_root(
        kit, tmp_path, ("Anomaly_Train.txt", "Anomaly_Test.txt", "ur-dmu/UCF_Annotation.txt")
    )
    index = load_dataset("ucf", root, require_videos=False)
    assert (len(index.split("train")), len(index.split("test")), index.errors) == (1610, 290, [])
    (warning,) = index.problems
    assert (warning.severity, warning.kind) == ("warning", "video-not-on-disk")
    assert warning.message.startswith(
        f"1900 listed videos are not under {root} (Abuse001_x264, Abuse002_x264, Abuse003_x264 ...)"
    )
    rec = index.by_id()["Abuse028_x264"]
    # UR-DMU's annotation states the frame count; the path is where the official layout puts the
    # video.
    assert (rec.intervals, rec.n_frames, rec.rel_path, rec.path) == (
        ((165, 241),),
        1412,
        "Abuse/Abuse028_x264.mp4",
        root / "Abuse/Abuse028_x264.mp4",
    )
    # The default still wants the videos: with none under the root, one error says so.
    with pytest.raises(WsvadError, match=f"^no videos found under {root} "):
        load_dataset("ucf", root)

    sh = tmp_path / "SH"
    sh.mkdir()
    for name in ("SH_Train.txt", "SH_Test.txt"):
        shutil.copy(kit.lists / "shanghaitech" / name, sh / name)
    shutil.copytree(kit.lists / "shanghaitech/rtfm/test_frame_mask", sh / "test_frame_mask")
    index = load_dataset("shanghaitech", sh, require_videos=False)
    assert (len(index.split("train")), len(index.split("test")), index.errors) == (238, 199, [])
    by_id = index.by_id()
    mask = np.load(sh / "test_frame_mask/01_0015.npy")
    assert by_id["01_0015"].n_frames == mask.size and by_id["01_0015"].split == "test"
    assert by_id["01_0015"].intervals[0][0] == int(np.flatnonzero(mask)[0])
    assert (by_id["01_001"].label, by_id["01_001"].n_frames) == (
        0,
        None,
    )  # a normal test video: no mask

    xd = tmp_path / "XD"
    xd.mkdir()
    for name in ("rgb.list", "rgb_test.list", "annotations.txt"):
        shutil.copy(kit.lists / "xd_violence" / name, xd / name)
    index = load_dataset("xd", xd, require_videos=False)
    assert (len(index.split("train")), len(index.split("test")), index.errors) == (3954, 800, [])
    rec = index.by_id()["v=S-7rRLrxnVQ__#1_label_B4-0-0"]
    assert (rec.intervals, rec.rel_path) == (
        ((0, 1517), (1970, 3038)),
        "test/v=S-7rRLrxnVQ__#1_label_B4-0-0.mp4",
    )


def test_import_train_evaluate_from_lists_only(kit, tmp_path, capsys):
    root = _lists_root(kit, tmp_path)
    train_list, test_list, feats = _rtfm_files(kit, tmp_path)
    store, out = tmp_path / "store", tmp_path / "run"
    assert (
        run(
            [
                "import",
                "--format",
                "rtfm",
                "--list",
                str(train_list),
                "--list",
                str(test_list),
                "--features-root",
                str(feats),
                "--dataset",
                "ucf",
                "--root",
                str(root),
                "--out",
                str(store),
            ]
        )
        == EXIT_OK
    )
    assert "1892 dataset videos have no features" in capsys.readouterr().err
    fs = FeatureStore.open(store)
    assert fs.video_ids() == sorted(TRAIN + list(TEST))
    attrs = fs.video_attrs("Abuse028_x264")
    # The official annotation has no frame counts: T * 16, flagged as an estimate.
    assert (
        attrs["intervals"],
        attrs["n_frames"],
        attrs["n_frames_source"],
        attrs["n_frames_estimated"],
    ) == ([[165, 241]], 320, "estimate", True)
    truths, _, problems, estimated = truths_from_store(store)
    assert (
        truths["Abuse028_x264"].intervals == ((165, 241),)
        and problems == []
        and estimated == sorted(TEST)
    )

    code = run(
        [
            "train",
            "--store",
            str(store),
            "--dataset",
            "ucf",
            "--root",
            str(root),
            "--detector",
            "mil",
            "--out",
            str(out),
            "--iterations",
            "3",
            "--set",
            "sampler.batch_per_class=2",
        ]
    )
    assert code == EXIT_PARTIAL  # the official lists name 1892 videos that are not in the store
    run_json = json.loads((out / "run.json").read_text())
    assert (run_json["n_train"], run_json["n_test"], run_json["labels_from"]) == (
        6,
        2,
        f"dataset ucf at {root}",
    )

    # The run's labels are the dataset's: its other 288 test videos are not in the store, so the
    # figures are not the full protocol's.
    assert run(["evaluate", "--run", str(out), "--no-plots"]) == EXIT_PARTIAL
    out_text, err = capsys.readouterr()
    assert "evaluated 2 of 290 test videos: NOT the full-protocol figures" in err
    assert "frame counts of 2 videos are estimates (T × 16): true-frames = rtfm here" in out_text
    report = json.loads((out / "eval/metrics.json").read_text())
    problems = report["coverage"]["problems"]
    assert report["coverage"]["matched"] == 2 and len(problems) == 288
    assert {p["kind"] for p in problems} == {"not in store"}
    assert report["protocol"]["estimated_frame_counts"] == 2
    assert (
        "frame counts of 2 videos are estimates (T × 16): true-frames = rtfm here"
        in report["protocol"]["description"]
    )
    rows = (out / "eval/per_video.csv").read_text().splitlines()
    assert any(
        r.startswith("-,Abuse028_x264,1,Abuse,320,76,") for r in rows
    )  # 76 = 241 - 165 anomalous frames


def test_ur_dmu_annotation_gives_true_frame_counts(kit, tmp_path):
    root = _lists_root(
        kit, tmp_path, ("Anomaly_Train.txt", "Anomaly_Test.txt", "ur-dmu/UCF_Annotation.txt")
    )
    _, test_list, feats = _rtfm_files(kit, tmp_path)
    assert (
        run(
            [
                "import",
                "--format",
                "rtfm",
                "--list",
                str(test_list),
                "--features-root",
                str(feats),
                "--dataset",
                "ucf",
                "--root",
                str(root),
                "--out",
                str(tmp_path / "store"),
            ]
        )
        == EXIT_OK
    )
    attrs = FeatureStore.open(tmp_path / "store").video_attrs("Abuse028_x264")
    assert (attrs["n_frames"], attrs["n_frames_source"], attrs["n_frames_estimated"]) == (
        1412,
        "dataset",
        False,
    )


def _run_dir(path: Path, store: Path, scores: dict[str, np.ndarray]) -> Path:
    """A run directory as `wsvad train` leaves it, trained on ``store`` without a dataset."""
    path.mkdir()
    np.savez(path / "scores.npz", **{k: v.astype(np.float32) for k, v in scores.items()})
    (path / "config.yaml").write_text("detector: {name: mil}\n")
    (path / "run.json").write_text(
        json.dumps(
            {
                "kind": "single",
                "store": str(store),
                "dataset": None,
                "root": None,
                "detector": "mil",
                "seed": 0,
                "model_selection": "last",
            }
        )
    )
    return path


def test_evaluate_imported_store_without_frame_annotation(kit, tmp_path, capsys):
    root = _lists_root(kit, tmp_path)
    _, test_list, feats = _rtfm_files(kit, tmp_path)
    store = tmp_path / "store"
    assert (
        run(
            [
                "import",
                "--format",
                "rtfm",
                "--list",
                str(test_list),
                "--features-root",
                str(feats),
                "--out",
                str(store),
            ]
        )
        == EXIT_OK
    )
    assert (
        FeatureStore.open(store).video_attrs("Normal_Videos_003_x264")["intervals"] is None
    )  # labels from the names only
    scores = {
        "Abuse028_x264": np.r_[np.zeros(10), np.ones(5), np.zeros(5)],
        "Normal_Videos_003_x264": np.full(10, 0.5),
    }
    out = _run_dir(tmp_path / "run", store, scores)
    # No frame annotation anywhere: every test video is listed as such (the normal one is not taken
    # as all-normal).
    assert run(["evaluate", "--run", str(out), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert (
        err.count("no ground truth") == 2
        and "holds no frame annotation for it (imported without --dataset?)" in err
    )
    assert "error: " in err and "no scored video matches a test video" in err
    # The dataset's lists give it, without the videos.
    assert (
        run(["evaluate", "--run", str(out), "--dataset", "ucf", "--root", str(root), "--no-plots"])
        == EXIT_OK
    )
    rows = (out / "eval/per_video.csv").read_text().splitlines()
    assert any(r.startswith("-,Abuse028_x264,1,Abuse,320,76,") for r in rows)
    assert any(r.startswith("-,Normal_Videos_003_x264,0,,160,0,") for r in rows)
    # Standalone scores against the lists, frame counts from the imported store: the same figures.
    code = run(
        [
            "evaluate",
            "--scores",
            str(out / "scores.npz"),
            "--dataset",
            "ucf",
            "--root",
            str(root),
            "--store",
            str(store),
            "--out",
            str(tmp_path / "standalone"),
            "--no-plots",
        ]
    )
    assert code == EXIT_PARTIAL  # the other 288 test videos of the official list have no scores
    standalone = json.loads((tmp_path / "standalone/metrics.json").read_text())
    assert standalone["metrics"]["auc"] == pytest.approx(
        json.loads((out / "eval/metrics.json").read_text())["metrics"]["auc"]
    )
    assert standalone["coverage"]["matched"] == 2


def test_evaluate_sultani_c3d_without_frame_counts(kit, tmp_path, capsys):
    root = _lists_root(kit, tmp_path)
    feats = tmp_path / "c3d"
    feats.mkdir()
    for i, vid in enumerate(TEST):
        np.savetxt(feats / f"{vid}_C.txt", np.random.default_rng(i).random((32, 4096)), fmt="%f")
    store = tmp_path / "store"
    assert (
        run(
            [
                "import",
                "--format",
                "sultani-c3d",
                "--features-root",
                str(feats),
                "--dataset",
                "ucf",
                "--root",
                str(root),
                "--out",
                str(store),
            ]
        )
        == EXIT_OK
    )
    assert (
        FeatureStore.open(store).video_attrs("Abuse028_x264")["n_frames"] is None
    )  # 32 bag means: no snippet geometry
    scores = {vid: np.linspace(0, 1, 32) for vid in TEST}
    out = _run_dir(tmp_path / "run", store, scores)
    assert run(["evaluate", "--run", str(out), "--no-plots"]) == EXIT_OK
    report = json.loads((out / "eval/metrics.json").read_text())
    assert (
        "frame counts of 2 videos are estimates (T × 16): true-frames = rtfm here"
        in report["protocol"]["description"]
    )
    rows = (out / "eval/per_video.csv").read_text().splitlines()
    assert any(
        r.startswith("-,Abuse028_x264,1,Abuse,512,76,") for r in rows
    )  # 32 segments x 16 frames


def test_import_with_only_the_features_uses_the_packaged_lists(kit, tmp_path, capsys):
    """No list or annotation under --root: the official copies shipped in the package label the
    imported videos."""
    root = tmp_path / "nothing_here"
    root.mkdir()
    train_list, test_list, feats = _rtfm_files(kit, tmp_path)
    store = tmp_path / "store"
    args = ["import", "--format", "rtfm", "--list", str(train_list), "--list", str(test_list)]
    args += ["--features-root", str(feats), "--dataset", "ucf", "--root", str(root)]
    assert run([*args, "--out", str(store)]) == EXIT_OK
    assert "1892 dataset videos have no features" in capsys.readouterr().err
    fs = FeatureStore.open(store)
    assert fs.video_ids() == sorted(TRAIN + list(TEST))
    attrs = fs.video_attrs("Abuse028_x264")
    assert (attrs["split"], attrs["label"], attrs["intervals"]) == ("test", 1, [[165, 241]])
    assert fs.video_attrs("Normal_Videos001_x264")["split"] == "train"
