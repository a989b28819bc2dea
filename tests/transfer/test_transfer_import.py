"""Import against a dataset: matching, unmatched table, resume, failures, provenance, CLI errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.data.records import DatasetIndex, VideoRecord
from wsvad.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL
from wsvad.pipeline.bookkeeping import tmp_entries
from wsvad.pipeline.store import FeatureStore

ROOT = Path("/data/UCF_Crime")


def _record(vid: str, folder: str, split: str, label: int, intervals=None) -> VideoRecord:
    return VideoRecord(
        vid,
        ROOT / folder / f"{vid}.mp4",
        f"{folder}/{vid}.mp4",
        split,
        label,
        (folder,) if label else (),
        intervals,
        None,
    )


@pytest.fixture
def ucf(monkeypatch):
    """A stand-in for the ucf adapter: the DatasetIndex/VideoRecord contract, four videos."""
    records = [
        _record("Abuse028_x264", "Abuse", "test", 1, ((165, 240),)),
        _record("Arrest001_x264", "Arrest", "test", 1, ((1, 50), (60, 70))),
        _record("Normal_Videos_003_x264", "Testing_Normal_Videos_Anomaly", "test", 0, ()),
        _record("Abuse001_x264", "Abuse", "train", 1),
    ]
    seen = {}

    def load_dataset(name, root, **options):
        seen.update(name=name, root=Path(root), options=options)
        return DatasetIndex(name, Path(root), records, class_names=["Normal", "Abuse", "Arrest"])

    monkeypatch.setattr("wsvad.data.load_dataset", load_dataset)
    monkeypatch.setattr("wsvad.data.check.load_dataset", load_dataset)
    return seen


@pytest.fixture
def published(kit, tmp_path):
    """Three lines of RTFM's real CRLF test list plus one stray video, with tiny [T, 10, 16]
    files."""
    lines = kit.raw_lines(kit.lists / "ucf_crime/rtfm/ucf-i3d-test.list")
    chosen = [lines[0], b"G:\\UCF_Test_ten_crop_i3d\\Stray999_x264_i3d.npy\r\n", lines[140]]
    listed = tmp_path / "ucf-i3d-test.list"
    listed.write_bytes(b"".join(chosen))
    feats = tmp_path / "feats"
    values = {
        kit.entry_name(line)[: -len("_i3d.npy")]: kit.save(
            feats / kit.entry_name(line), (5 + i, 10, 16), seed=i
        )
        for i, line in enumerate(chosen)
    }
    return listed, feats, values


def _import(tmp_path, listed, feats, *extra) -> int:
    return run(
        [
            "import",
            "--format",
            "rtfm",
            "--list",
            str(listed),
            "--features-root",
            str(feats),
            "--dataset",
            "ucf",
            "--root",
            str(tmp_path),
            "--out",
            str(tmp_path / "store"),
            *extra,
        ]
    )


def test_import_matches_dataset_and_reports_unmatched(ucf, published, tmp_path, capsys):
    listed, feats, values = published
    assert _import(tmp_path, listed, feats) == EXIT_PARTIAL
    err = capsys.readouterr().err
    assert "1 videos with features but no labels (not imported)" in err
    assert "Stray999_x264" in err and "not in the ucf dataset" in err
    assert "1 dataset videos have no features (e.g. Arrest001_x264)" in err
    # Published features come without videos: the adapter keeps listed videos that are not on disk.
    assert ucf == {"name": "ucf", "root": tmp_path, "options": {"require_videos": False}}

    store = FeatureStore.open(tmp_path / "store")
    assert store.video_ids() == ["Abuse028_x264", "Normal_Videos_003_x264"]
    attrs = store.video_attrs("Abuse028_x264")
    assert {k: attrs[k] for k in ("split", "label", "classes", "intervals", "source")} == {
        "split": "test",
        "label": 1,
        "classes": ["Abuse"],
        "intervals": [[165, 240]],
        "source": "Abuse/Abuse028_x264.mp4",
    }
    np.testing.assert_array_equal(
        store.read("Normal_Videos_003_x264"), values["Normal_Videos_003_x264"]
    )
    report = json.loads((tmp_path / "store/import-report.json").read_text())
    assert report["unmatched"] == [
        {
            "video_id": "Stray999_x264",
            "split": "test",
            "listed_as": "ucf-i3d-test.list:2",
            "reason": "not in the ucf dataset",
        }
    ]
    # Only the listed split counts: the training video Abuse001 is not "missing".
    assert report["missing_features"] == ["Arrest001_x264"]

    top = store.attrs
    assert top["backbone"] == "imported:i3d_r50" and top["dataset"] == "ucf"
    assert top["provenance"]["kind"] == "imported" and top["provenance"]["format"] == "rtfm"
    assert top["provenance"]["publisher_backbone"] == "i3d_r50 (RTFM)"
    assert top["provenance"]["files"] == [
        {"path": str(listed.resolve()), "sha256": hashlib.sha256(listed.read_bytes()).hexdigest()}
    ]
    assert store.summary()["done"] == 2 and store.summary()["pending"] == 0


def test_store_satisfies_the_trainer_contract(ucf, published, tmp_path):
    listed, feats, _ = published
    _import(tmp_path, listed, feats)
    store = FeatureStore.open(tmp_path / "store")
    for vid in store.video_ids():
        attrs = store.video_attrs(vid)
        assert attrs["split"] in ("train", "test") and attrs["label"] in (0, 1), vid
        assert (
            isinstance(attrs["classes"], list)
            and "intervals" in attrs
            and attrs["status"] == "complete"
        )
        assert attrs["n_snippets"] == store.array(vid).shape[0]
    assert store.array("Abuse028_x264").shape == (5, 10, 16)


def test_resume_skips_complete_videos_and_cleans_debris(ucf, published, tmp_path):
    listed, feats, values = published
    _import(tmp_path, listed, feats)
    store_dir = tmp_path / "store"
    kept = store_dir / "videos/Abuse028_x264/zarr.json"
    kept_mtime = kept.stat().st_mtime_ns
    FeatureStore.open(store_dir).delete_video(
        "Normal_Videos_003_x264"
    )  # as if killed before its rename
    (store_dir / ".tmp/Normal_Videos_003_x264.host.1.deadbeef").mkdir(parents=True)
    assert (
        _import(tmp_path, listed, feats, "--workers", "1") == EXIT_PARTIAL
    )  # a different worker count resumes
    report = json.loads((store_dir / "import-report.json").read_text())
    assert (report["imported"], report["skipped_complete"]) == (1, 1)
    assert kept.stat().st_mtime_ns == kept_mtime
    assert tmp_entries(store_dir) == []
    np.testing.assert_array_equal(
        FeatureStore.open(store_dir).read("Normal_Videos_003_x264"),
        values["Normal_Videos_003_x264"],
    )


def test_changed_config_is_refused_then_overwritten(ucf, published, tmp_path, capsys):
    listed, feats, _ = published
    _import(tmp_path, listed, feats)
    capsys.readouterr()
    assert _import(tmp_path, listed, feats, "--snippet-len", "32") == EXIT_ERROR
    err = capsys.readouterr().err
    assert "store was made with a different config (snippet_len: None -> 32)" in err
    assert _import(tmp_path, listed, feats, "--snippet-len", "32", "--overwrite") == EXIT_PARTIAL
    store = FeatureStore.open(tmp_path / "store")
    assert store.attrs["snippet_len"] == 32
    assert store.video_attrs("Abuse028_x264")["n_frames"] == 4 * 16 + 32


def test_broken_files_fail_alone_and_finished_work_is_kept(ucf, published, tmp_path, capsys):
    listed, feats, _ = published
    truncated = feats / "Abuse028_x264_i3d.npy"
    truncated.write_bytes(truncated.read_bytes()[:-100])
    listed.write_bytes(
        listed.read_bytes() + b"G:\\x\\Arrest001_x264_i3d.npy\r\nG:\\x\\Abuse001_x264_i3d.npy\r\n"
    )
    np.save(feats / "Arrest001_x264_i3d.npy", np.ones((3, 10, 16), np.float32))
    np.save(feats / "Abuse001_x264_i3d.npy", np.ones((2, 10, 16), np.float32))
    # The first readable file has the odd D: the majority of the probed files still defines the
    # store.
    np.save(feats / "Normal_Videos_003_x264_i3d.npy", np.zeros((4, 10, 8), np.float32))
    assert _import(tmp_path, listed, feats) == EXIT_PARTIAL
    assert (
        "note: Abuse001_x264: listed as test, the dataset says train (kept)"
        in capsys.readouterr().err
    )
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_ids() == ["Abuse001_x264", "Arrest001_x264"]
    assert store.feature_shape == (16,)
    assert store.video_attrs("Abuse001_x264")["split"] == "train"
    failures = store.failures()
    assert set(failures) == {"Abuse028_x264", "Normal_Videos_003_x264"}
    assert (
        failures["Normal_Videos_003_x264"]["reason"]
        == "shape [T, 10, 8] float32 differs from the store's [T, 10, 16] float32"
    )
    assert failures["Abuse028_x264"]["reason"].startswith(f"{truncated}: not a readable .npy file")
    assert failures["Abuse028_x264"]["source"] == "ucf-i3d-test.list:1"
    assert store.summary()["failed"] == 2 and store.summary()["pending"] == 0
    # Fixing the files and running again imports them and clears their failures.
    np.save(feats / "Normal_Videos_003_x264_i3d.npy", np.zeros((4, 10, 16), np.float32))
    np.save(truncated, np.zeros((2, 10, 16), np.float32))
    capsys.readouterr()
    assert _import(tmp_path, listed, feats) == EXIT_PARTIAL  # the stray video is still unmatched
    assert FeatureStore.open(tmp_path / "store").failures() == {}


def test_no_dataset_labels_from_names_unknown_names_unmatched(kit, tmp_path):
    feats = tmp_path / "feats"
    kit.save(feats / "01_0014_i3d.npy", (3, 10, 4), 0)
    kit.save(feats / "01_001_i3d.npy", (3, 10, 4), 1)
    kit.save(feats / "holiday_i3d.npy", (3, 10, 4), 2)
    (tmp_path / "sh-train.list").write_text(
        "/home/yu/SH/01_0014_i3d.npy\n/home/yu/SH/01_001_i3d.npy\n/home/yu/SH/holiday_i3d.npy\n"
    )
    code = run(
        [
            "import",
            "--format",
            "rtfm",
            "--train-list",
            str(tmp_path / "sh-train.list"),
            "--features-root",
            str(feats),
            "--out",
            str(tmp_path / "store"),
            "--checksum",
            "stat",
        ]
    )
    assert code == EXIT_PARTIAL
    store = FeatureStore.open(tmp_path / "store")
    assert [
        (v, store.video_attrs(v)["label"], store.video_attrs(v)["split"]) for v in store.video_ids()
    ] == [("01_001", 0, "train"), ("01_0014", 1, "train")]
    files = store.video_attrs("01_0014")["feature_files"]
    assert files == [
        {
            "path": "01_0014_i3d.npy",
            "size": (feats / "01_0014_i3d.npy").stat().st_size,
            "mtime": (feats / "01_0014_i3d.npy").stat().st_mtime,
        }
    ]
    report = json.loads((tmp_path / "store/import-report.json").read_text())
    assert report["unmatched"][0]["reason"] == "the name carries no label; give --dataset/--root"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--format", "rtfm", "--out", "s", "--list", "a.list"],
            "error: missing --features-root (give it on the command line",
        ),
        (
            ["--format", "mp4", "--features-root", ".", "--out", "s", "--list", "a.list"],
            "error: command line: format: should be 'crops-per-file', 'rtfm',",
        ),
        (
            ["--format", "rtfm", "--features-root", "nowhere", "--out", "s", "--list", "a.list"],
            "error: nowhere: features root does not exist or is not a directory",
        ),
        (
            ["--format", "rtfm", "--features-root", ".", "--out", "s", "--dataset", "ucf"],
            "--dataset needs --root",
        ),
        (["--format", "rtfm", "--features-root", ".", "--out", "s"], "give --list files"),
        (
            ["--format", "rtfm", "--features-root", ".", "--out", "s", "--list", "a.list"],
            "error: a.list: cannot read feature list",
        ),
    ],
)
def test_cli_errors_are_one_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    usage = message.startswith("error: missing")  # bad usage is 2, as click's usage errors
    assert run(["import", *args]) == (2 if usage else EXIT_ERROR)
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_real_ucf_adapter_gives_frame_gt(kit, tmp_path):
    """With the real ucf adapter and the real official lists: intervals come from the annotation
    file."""
    import shutil

    root = tmp_path / "UCF_Crime"
    root.mkdir()
    for name in (
        "Anomaly_Train.txt",
        "Anomaly_Test.txt",
        "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
    ):
        shutil.copy(kit.lists / "ucf_crime" / name, root / name)
    # Two of the three videos are on disk; Arrest001 is not, and is imported all the same (labels
    # from the lists).
    for rel in (
        "Abuse/Abuse028_x264.mp4",
        "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    lines = kit.raw_lines(kit.lists / "ucf_crime/rtfm/ucf-i3d-test.list")
    listed = tmp_path / "ucf-i3d-test.list"
    listed.write_bytes(lines[0] + lines[2] + lines[140])
    for i, line in enumerate([lines[0], lines[2], lines[140]]):
        kit.save(tmp_path / "feats" / kit.entry_name(line), (4, 10, 8), seed=i)
    assert (
        run(
            [
                "import",
                "--format",
                "rtfm",
                "--list",
                str(listed),
                "--features-root",
                str(tmp_path / "feats"),
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
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_ids() == ["Abuse028_x264", "Arrest001_x264", "Normal_Videos_003_x264"]
    assert store.video_attrs("Abuse028_x264")["intervals"] == [
        [165, 241]
    ]  # "165 240" read as [165, 240 + 1)
    assert store.video_attrs("Arrest001_x264")["source"] == "Arrest/Arrest001_x264.mp4"
    assert store.video_attrs("Normal_Videos_003_x264")["intervals"] == []
    report = json.loads((tmp_path / "store/import-report.json").read_text())
    assert report["unmatched"] == []
    assert any("1898 listed videos are not under" in n for n in report["notes"])


def test_export_writes_rtfm_style_frame_gt(ucf, published, tmp_path):
    from wsvad.transfer import ExportConfig, run_export

    listed, feats, _ = published
    listed.write_bytes(listed.read_bytes() + b"G:\\x\\Arrest001_x264_i3d.npy\r\n")
    np.save(feats / "Arrest001_x264_i3d.npy", np.ones((6, 10, 16), np.float32))
    _import(tmp_path, listed, feats)
    result = run_export(ExportConfig(store=tmp_path / "store", format="rtfm", out=tmp_path / "exp"))
    # test.list order: Abuse028 (T=5), Arrest001 (T=6), Normal_Videos_003 (T=7); 16 frames per
    # snippet.
    gt = np.load(result.gt)
    assert gt.dtype == np.float64 and gt.shape == ((5 + 6 + 7) * 16,)
    expected = np.zeros_like(gt)
    expected[80 + 1 : 80 + 50] = (
        1  # Arrest001 [1, 50) and [60, 70); Abuse028's [165, 241) lies past its 80 frames
    )
    expected[80 + 60 : 80 + 70] = 1
    np.testing.assert_array_equal(gt, expected)
    assert json.loads((tmp_path / "exp/export.json").read_text())["gt"] == "gt-test.npy"


def test_scan_features_root_without_lists(ucf, tmp_path):
    """No --list: every file of the format under the root; splits come from the dataset."""
    from wsvad.transfer import ImportConfig, run_import

    feats = tmp_path / "Avg"
    feats.mkdir()
    for i, vid in enumerate(["Abuse001_x264", "Normal_Videos_003_x264", "Unknown7_x264"]):
        (feats / f"{vid}_C.txt").write_text(
            f"{i}.5 " * 4096 + "\n" + f"{i}.25 " * 4096 + "\n" * 1 + ("0.0 " * 4096 + "\n") * 30
        )
    (feats / "readme.md").write_text("not a feature file")
    result = run_import(
        ImportConfig(
            format="sultani-c3d",
            features_root=feats,
            out=tmp_path / "store",
            dataset="ucf",
            root=tmp_path,
        )
    )
    assert result.imported == ["Abuse001_x264", "Normal_Videos_003_x264"]
    assert [u.video_id for u in result.unmatched] == ["Unknown7_x264"]
    assert result.missing == ["Abuse028_x264", "Arrest001_x264"]  # no list: both splits count
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_attrs("Abuse001_x264")["split"] == "train"
    np.testing.assert_array_equal(
        store.read("Normal_Videos_003_x264")[:2, 0, :3], [[1.5] * 3, [1.25] * 3]
    )


def test_interrupt_keeps_finished_videos_and_resumes(ucf, published, tmp_path, monkeypatch):
    """Ctrl-C reaches the main thread: the video in flight finishes and commits, queued ones never
    start."""
    import threading

    import wsvad.transfer.import_features as imp
    from wsvad.transfer import ImportConfig, ListFile, run_import

    listed, feats, values = published
    listed.write_bytes(listed.read_bytes() + b"G:\\x\\Arrest001_x264_i3d.npy\r\n")
    np.save(feats / "Arrest001_x264_i3d.npy", np.ones((6, 10, 16), np.float32))
    real, never = imp._import_one, threading.Event()

    def slow_second(store, cfg, fmt, plan):
        if plan.video.video_id == "Normal_Videos_003_x264":
            never.wait(1.0)  # still in flight when the interrupt arrives
        return real(store, cfg, fmt, plan)

    def ctrl_c(video_id, ok):
        raise KeyboardInterrupt

    monkeypatch.setattr(imp, "_import_one", slow_second)
    cfg = ImportConfig(
        format="rtfm",
        lists=[ListFile(path=listed)],
        features_root=feats,
        dataset="ucf",
        root=tmp_path,
        out=tmp_path / "store",
        workers=1,
    )
    with pytest.raises(KeyboardInterrupt):
        run_import(cfg, progress=ctrl_c)
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_ids() == [
        "Abuse028_x264",
        "Normal_Videos_003_x264",
    ]  # Arrest001 was cancelled
    assert not (tmp_path / "store/.lock").exists()
    result = run_import(cfg)
    assert (result.imported, sorted(result.skipped)) == (
        ["Arrest001_x264"],
        ["Abuse028_x264", "Normal_Videos_003_x264"],
    )
    np.testing.assert_array_equal(
        store.read("Normal_Videos_003_x264"), values["Normal_Videos_003_x264"]
    )


def test_probe_frames_reads_true_counts(make_video, published, tmp_path, monkeypatch):
    listed, feats, _ = published
    video = make_video("Abuse/Abuse028_x264.mp4", n_frames=40)
    records = [
        VideoRecord(
            "Abuse028_x264", video, "Abuse/Abuse028_x264.mp4", "test", 1, ("Abuse",), ((3, 9),)
        ),
        _record("Normal_Videos_003_x264", "Testing_Normal_Videos_Anomaly", "test", 0, ()),
    ]
    monkeypatch.setattr(
        "wsvad.data.check.load_dataset",
        lambda name, root, **o: DatasetIndex(name, Path(root), records),
    )
    _import(tmp_path, listed, feats, "--probe-frames")
    store = FeatureStore.open(tmp_path / "store")
    probed = store.video_attrs("Abuse028_x264")
    assert (probed["n_frames"], probed["n_frames_source"], probed["n_frames_estimated"]) == (
        40,
        "probed",
        False,
    )
    # No video file on disk: the RTFM estimate, flagged as such (T = 7 snippets of 16 frames).
    guessed = store.video_attrs("Normal_Videos_003_x264")
    assert (guessed["n_frames"], guessed["n_frames_source"], guessed["n_frames_estimated"]) == (
        7 * 16,
        "estimate",
        True,
    )
