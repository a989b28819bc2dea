"""Published layout -> import -> store -> export gives back the same bits, for every layout."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_OK, WsvadError
from wsvad.pipeline.store import FeatureStore
from wsvad.transfer import ExportConfig, ImportConfig, ListFile, run_export, run_import


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rtfm_crlf_windows_list_roundtrip_bit_exact(kit, tmp_path):
    """RTFM's real CRLF list with G:\\ paths; files are found by name under --features-root."""
    lines = kit.raw_lines(kit.lists / "ucf_crime/rtfm/ucf-i3d-test.list")
    chosen = lines[:2] + lines[-1:]  # Abuse028, Abuse030, Normal_Videos_944
    listed = tmp_path / "ucf-i3d-test.list"
    listed.write_bytes(b"".join(chosen))
    assert listed.read_bytes().endswith(b"_i3d.npy\r\n")
    feats = tmp_path / "feats" / "UCF_Test_ten_crop_i3d"
    values = {
        kit.entry_name(line): kit.save(feats / kit.entry_name(line), (7 + i, 10, 16), seed=i)
        for i, line in enumerate(chosen)
    }

    code = run(
        [
            "import",
            "--format",
            "rtfm",
            "--list",
            str(listed),
            "--features-root",
            str(tmp_path / "feats"),
            "--out",
            str(tmp_path / "store"),
            "--workers",
            "2",
        ]
    )
    assert code == EXIT_OK
    store = FeatureStore.open(tmp_path / "store")
    assert store.video_ids() == ["Abuse028_x264", "Abuse030_x264", "Normal_Videos_944_x264"]
    np.testing.assert_array_equal(store.read("Abuse030_x264"), values["Abuse030_x264_i3d.npy"])
    # torchvision TenCrop order, the same as wsvad's own extraction (centre = crop 4).
    assert store.attrs["crop_order"] == [
        "TL",
        "TR",
        "BL",
        "BR",
        "C",
        "flip-TL",
        "flip-TR",
        "flip-BL",
        "flip-BR",
        "flip-C",
    ]
    attrs = store.video_attrs("Normal_Videos_944_x264")
    assert (attrs["split"], attrs["label"], attrs["classes"], attrs["n_snippets"]) == (
        "test",
        0,
        [],
        9,
    )
    assert (attrs["n_frames"], attrs["n_frames_estimated"]) == (9 * 16, True)
    assert attrs["feature_files"] == [
        {
            "path": "UCF_Test_ten_crop_i3d/Normal_Videos_944_x264_i3d.npy",
            "sha256": _sha(feats / "Normal_Videos_944_x264_i3d.npy"),
        }
    ]

    assert (
        run(
            [
                "export",
                "--store",
                str(tmp_path / "store"),
                "--format",
                "rtfm",
                "--out",
                str(tmp_path / "exp"),
                "--path-prefix",
                "G:\\UCF_Test_ten_crop_i3d",
            ]
        )
        == EXIT_OK
    )
    for name in values:
        assert (tmp_path / "exp" / name).read_bytes() == (feats / name).read_bytes(), name
    # Anomalous first, then normal, as RTFM's loader slices the list by position.
    assert (tmp_path / "exp/test.list").read_text().splitlines() == [
        "G:\\UCF_Test_ten_crop_i3d/Abuse028_x264_i3d.npy",
        "G:\\UCF_Test_ten_crop_i3d/Abuse030_x264_i3d.npy",
        "G:\\UCF_Test_ten_crop_i3d/Normal_Videos_944_x264_i3d.npy",
    ]
    assert not list((tmp_path / "exp").glob(".*.tmp"))
    manifest = json.loads((tmp_path / "exp/export.json").read_text())
    assert manifest["gt"] is None
    assert (
        manifest["gt_note"]
        == "no gt-test.npy: test video Abuse028_x264 has no frame intervals (import with --dataset)"
    )
    assert (
        manifest["provenance"]["kind"] == "imported" and manifest["backbone"] == "imported:i3d_r50"
    )
    with pytest.raises(WsvadError, match=r"store: no train video in the store$"):
        run_export(
            ExportConfig(
                store=tmp_path / "store", format="rtfm", out=tmp_path / "exp2", split="train"
            )
        )


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_xd_crops_per_file_roundtrip(kit, tmp_path, dtype):
    """XDVioDet's real per-crop lines (5 crops, names with # and =); __0 stays crop 0."""
    lines = kit.raw_lines(kit.lists / "xd_violence/rgb_test.list")
    chosen = lines[:5] + lines[-5:]  # one violent, one normal video
    train = tmp_path / "rgb.list"
    train.write_bytes(b"".join(chosen[:5]))
    test = tmp_path / "rgb_test.list"
    test.write_bytes(b"".join(chosen[5:]))
    feats = tmp_path / "i3d-features"
    values = {
        kit.entry_name(line): kit.save(feats / kit.entry_name(line), (6, 32), seed=i, dtype=dtype)
        for i, line in enumerate(chosen)
    }
    cfg = ImportConfig(
        format="crops-per-file",
        features_root=feats,
        out=tmp_path / "store",
        lists=[ListFile(path=train), ListFile(path=test)],
    )
    result = run_import(cfg)
    assert not result.partial and len(result.imported) == 2
    store = FeatureStore.open(tmp_path / "store")
    assert (store.crops, store.feature_shape, store.dtype) == (5, (32,), dtype)
    assert store.attrs["crop_order"] == ["C", "corner-1", "corner-2", "corner-3", "corner-4"]
    violent = kit.entry_name(chosen[0])[: -len("__0.npy")]
    assert "#" in violent
    stacked = store.read(violent)
    for k in range(5):
        np.testing.assert_array_equal(stacked[:, k], values[f"{violent}__{k}.npy"])
    assert store.video_attrs(violent)["split"] == "train"
    assert store.video_attrs(violent)["label"] == 1

    exported = run_export(
        ExportConfig(store=tmp_path / "store", format="crops-per-file", out=tmp_path / "exp")
    )
    assert len(exported.files) == 10
    for name in values:
        assert (tmp_path / "exp" / name).read_bytes() == (feats / name).read_bytes(), name
    listed = (tmp_path / "exp/test.list").read_text().splitlines()
    assert [entry.rsplit("/", 1)[-1] for entry in listed] == [
        kit.entry_name(line) for line in chosen[5:]
    ]


def test_video_features_and_vggish_roundtrip(kit, tmp_path):
    """video_features writes <stem>_rgb.npy plus <stem>_fps.npy; XD audio is <name>__vggish.npy
    [T, 128]."""
    vf = tmp_path / "output" / "i3d"
    rgb = {
        v: kit.save(vf / f"{v}_rgb.npy", (4 + i, 1024), seed=i)
        for i, v in enumerate(["Abuse028_x264", "Normal_Videos_003_x264"])
    }
    kit.save(vf / "Abuse028_x264_flow.npy", (4, 1024), seed=9)  # the other stream is ignored
    np.save(vf / "Abuse028_x264_fps.npy", np.array(30.0))
    (tmp_path / "test.list").write_text("Abuse028_x264_rgb.npy\nNormal_Videos_003_x264_rgb.npy")
    run_import(
        ImportConfig(
            format="video-features",
            features_root=tmp_path / "output",
            out=tmp_path / "vstore",
            lists=[ListFile(path=tmp_path / "test.list")],
        )
    )
    store = FeatureStore.open(tmp_path / "vstore")
    assert (
        store.crops,
        store.feature_shape,
        store.attrs["snippet_len"],
        store.attrs["backbone"],
    ) == (1, (1024,), 64, "imported:i3d")
    np.testing.assert_array_equal(
        store.read("Normal_Videos_003_x264")[:, 0], rgb["Normal_Videos_003_x264"]
    )
    assert store.video_attrs("Abuse028_x264")["fps"] == 30.0
    assert store.video_attrs("Normal_Videos_003_x264")["fps"] is None
    run_export(
        ExportConfig(store=tmp_path / "vstore", format="video-features", out=tmp_path / "vexp")
    )
    assert (tmp_path / "vexp/Abuse028_x264_rgb.npy").read_bytes() == (
        vf / "Abuse028_x264_rgb.npy"
    ).read_bytes()

    name = kit.entry_name(kit.raw_lines(kit.lists / "xd_violence/rgb_test.list")[0])[
        : -len("__0.npy")
    ]
    audio = kit.save(tmp_path / "vggish-features/test" / f"{name}__vggish.npy", (11, 128), seed=3)
    (tmp_path / "audio_test.list").write_text(f"/media/vggish-features/test/{name}__vggish.npy\n")
    run_import(
        ImportConfig(
            format="vggish",
            features_root=tmp_path / "vggish-features",
            out=tmp_path / "astore",
            lists=[ListFile(path=tmp_path / "audio_test.list")],
        )
    )
    astore = FeatureStore.open(tmp_path / "astore")
    assert (astore.attrs["modality"], astore.crops, astore.feature_shape) == ("audio", 1, (128,))
    np.testing.assert_array_equal(astore.read(name)[:, 0], audio)
    run_export(ExportConfig(store=tmp_path / "astore", format="vggish", out=tmp_path / "aexp"))
    assert (tmp_path / f"aexp/{name}__vggish.npy").read_bytes() == (
        tmp_path / f"vggish-features/test/{name}__vggish.npy"
    ).read_bytes()
    five = tmp_path / "five"
    for k in range(5):
        kit.save(five / f"x_label_A__{k}.npy", (2, 4), k)
    (tmp_path / "five.list").write_text("\n".join(f"x_label_A__{k}.npy" for k in range(5)))
    run_import(
        ImportConfig(
            format="crops-per-file",
            features_root=five,
            out=tmp_path / "fstore",
            lists=[ListFile(path=tmp_path / "five.list", split="test")],
        )
    )
    with pytest.raises(
        WsvadError, match="^x_label_A: this layout holds one crop per video, the store has 5$"
    ):
        run_export(ExportConfig(store=tmp_path / "fstore", format="vggish", out=tmp_path / "bad"))


def test_sultani_text_import_values_and_no_lossy_export(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((32, 4096))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    feats = tmp_path / "Avg"
    feats.mkdir()
    # Sultani's MATLAB writes "%f " per value and a newline per segment.
    (feats / "Abuse028_x264_C.txt").write_text(
        "".join("".join(f"{v:f} " for v in r) + "\n" for r in rows)
    )
    (feats / "Normal_Videos_003_x264_C.txt").write_text("0.5 " * 4096 + "\n")
    (tmp_path / "test.list").write_text("Abuse028_x264_C.txt\nNormal_Videos_003_x264_C.txt\n")
    result = run_import(
        ImportConfig(
            format="sultani-c3d",
            features_root=feats,
            out=tmp_path / "store",
            lists=[ListFile(path=tmp_path / "test.list")],
        )
    )
    assert result.imported == ["Abuse028_x264"]
    assert result.failed == {
        "Normal_Videos_003_x264": (
            f"{feats / 'Normal_Videos_003_x264_C.txt'}: expected 32 rows of 4096 values, got 1 "
            "rows of [4096] values"
        )
    }
    store = FeatureStore.open(tmp_path / "store")
    expected = np.array([[float(f"{v:f}") for v in r] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(store.read("Abuse028_x264")[:, 0], expected)
    assert store.attrs["bagged"] == {"rule": "sultani", "T": 32}
    assert store.video_attrs("Abuse028_x264")["n_frames"] is None
    assert store.failures()["Normal_Videos_003_x264"]["exception"] == "WsvadError"
    with pytest.raises(WsvadError, match="--format sultani-c3d"):
        run_export(
            ExportConfig.model_construct(
                store=tmp_path / "store",
                format="sultani-c3d",
                out=tmp_path / "e",
                stream="rgb",
                path_prefix=None,
                split=None,
            )
        )


def test_urdmu_ten_crop_relative_paths_roundtrip(kit, tmp_path):
    """UR-DMU's UCF list: relative dataset/<Folder>/<video>__k.npy entries, 10 crops, no final
    newline."""
    lines = kit.raw_lines(kit.lists / "ucf_crime/ur-dmu/UCF_Test.list")[
        -10:
    ]  # Normal_Videos_944, the last video
    assert not lines[-1].endswith(b"\n")
    listed = tmp_path / "UCF_Test.list"
    listed.write_bytes(b"".join(lines))
    root = tmp_path / "UR-DMU"
    values = [
        kit.save(root / line.decode().strip(), (3, 12), seed=k) for k, line in enumerate(lines)
    ]
    result = run_import(
        ImportConfig(
            format="crops-per-file",
            features_root=root,
            out=tmp_path / "store",
            lists=[ListFile(path=listed)],
        )
    )
    assert result.imported == ["Normal_Videos_944_x264"] and not result.partial
    store = FeatureStore.open(tmp_path / "store")
    assert store.attrs["crop_order"] == [
        "C",
        "corner-1",
        "corner-2",
        "corner-3",
        "corner-4",
        "flip-C",
        "flip-corner-1",
        "flip-corner-2",
        "flip-corner-3",
        "flip-corner-4",
    ]
    np.testing.assert_array_equal(store.read("Normal_Videos_944_x264"), np.stack(values, axis=1))
    assert store.video_attrs("Normal_Videos_944_x264")["feature_files"][9]["path"] == (
        "dataset/Testing_Normal_Videos_Anomaly/Normal_Videos_944_x264__9.npy"
    )
    run_export(
        ExportConfig(
            store=tmp_path / "store",
            format="crops-per-file",
            out=tmp_path / "exp",
            path_prefix="dataset/Testing_Normal_Videos_Anomaly",
        )
    )
    assert (tmp_path / "exp/test.list").read_text().splitlines() == [
        line.decode().strip() for line in lines
    ]
