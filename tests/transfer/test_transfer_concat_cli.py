"""``wsvad concat`` (XD-Violence I3D + VGGish for the salient detector with BiLSTM) and ``wsvad
info`` on imported stores."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL
from wsvad.pipeline.store import FeatureStore

CROPS, DV, DA = 5, 6, 4


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")


def _names(kit, listed: str, n_violent: int, n_normal: int) -> list[str]:
    ids = list(
        dict.fromkeys(
            kit.entry_name(line).rsplit("__", 1)[0]
            for line in kit.raw_lines(kit.lists / "xd_violence" / listed)
        )
    )
    return ids[:n_violent] + ids[-n_normal:]


@pytest.fixture
def xd(kit, tmp_path):
    """XD lists only under ROOT; per-crop RGB [T, 5, 6] and VGGish [Ta, 4] files for 8 real video
    names.

    Audio lengths: equal, one shorter (XDVioDet's case), three shorter (misaligned) and absent."""
    root = tmp_path / "XD"
    root.mkdir()
    for name in ("rgb.list", "rgb_test.list", "annotations.txt"):
        shutil.copy(kit.lists / "xd_violence" / name, root / name)
    train, test = _names(kit, "rgb.list", 3, 3), _names(kit, "rgb_test.list", 1, 1)
    rgb, audio = tmp_path / "rgb", tmp_path / "audio"
    rgb.mkdir()
    for i, vid in enumerate(train + test):
        T = 8 + i
        rgb_values = np.random.default_rng(i).standard_normal((T, CROPS, DV)).astype(np.float32)
        rgb_values[..., 0] += 0.0 if vid.endswith("_label_A") else 1.0
        for k in range(CROPS):
            np.save(rgb / f"{vid}__{k}.npy", rgb_values[:, k])
        gap = {0: 0, 1: 1, 2: 3}.get(i, i % 2)
        if i == 3:
            continue  # a video without audio features
        kit.save(audio / f"{vid}__vggish.npy", (T - gap, DA), seed=100 + i)
    return root, rgb, audio, train, test


def test_concat_cli_pairs_stores_and_salient_bilstm_trains(xd, tmp_path, capsys):
    root, rgb, audio, train, test = xd
    video_store, audio_store, av = (
        tmp_path / "video.zarr",
        tmp_path / "audio.zarr",
        tmp_path / "av.zarr",
    )
    assert (
        run(
            [
                "import",
                "--format",
                "crops-per-file",
                "--features-root",
                str(rgb),
                "--dataset",
                "xd",
                "--root",
                str(root),
                "--out",
                str(video_store),
            ]
        )
        == EXIT_OK
    )
    assert (
        run(
            [
                "import",
                "--format",
                "vggish",
                "--features-root",
                str(audio),
                "--dataset",
                "xd",
                "--root",
                str(root),
                "--out",
                str(audio_store),
            ]
        )
        == EXIT_OK
    )
    capsys.readouterr()

    # Any order: the audio store is recognised by its modality attr.
    assert (
        run(["concat", "--store", str(audio_store), "--store", str(video_store), "--out", str(av)])
        == EXIT_PARTIAL
    )
    captured = capsys.readouterr()
    assert "2 videos not in" in captured.err
    assert f"{train[3]}" in captured.err and "video only (no audio features)" in captured.err
    assert (
        f"{train[2]}" in captured.err
        and "lengths differ by more than one snippet: video T=10, audio T=7" in captured.err
    )
    assert "6 videos, feature shape [T, 5, 10]" in captured.out and "common prefix" in captured.out
    combined, video = FeatureStore.open(av), FeatureStore.open(video_store)
    assert combined.video_ids() == sorted(v for v in train + test if v not in (train[2], train[3]))
    mixed = combined.read(train[1])  # audio one snippet shorter: the common prefix
    assert mixed.shape == (8, CROPS, DV + DA)
    np.testing.assert_array_equal(mixed[..., :DV], video.read(train[1])[:8])
    np.testing.assert_array_equal(
        mixed[:, 2, DV:], FeatureStore.open(audio_store).read(train[1])[:, 0]
    )
    attrs = combined.video_attrs(test[0])
    assert (attrs["split"], attrs["label"], attrs["intervals"] is not None) == ("test", 1, True)

    assert run(["info", str(video_store)]) == EXIT_OK
    out = capsys.readouterr().out
    assert (
        "imported (format crops-per-file, publisher backbone i3d (Wu et al. / UR-DMU per-crop "
        "release))" in out
    )
    assert run(["info", str(av)]) == EXIT_OK
    out = capsys.readouterr().out
    assert (
        "imported (concatenated: video imported (format crops-per-file" in out
        and "audio imported (format vggish" in out
    )

    code = run(
        [
            "train",
            "--store",
            str(av),
            "--detector",
            "salient",
            "--out",
            str(tmp_path / "run"),
            "--iterations",
            "2",
            "--set",
            "detector.params.bilstm=true",
            "--set",
            "detector.params.lstm_hidden=8",
            "--set",
            "sampler.batch_per_class=2",
        ]
    )
    assert code == EXIT_OK
    run_json = json.loads((tmp_path / "run/run.json").read_text())
    assert (run_json["feature_shape"], run_json["n_train"], run_json["n_test"]) == ([DV + DA], 4, 2)
    model = json.loads((tmp_path / "run/model.json").read_text())
    assert model["params"]["bilstm"] is True


def test_concat_cli_errors(xd, tmp_path, capsys):
    root, rgb, _, _, _ = xd
    video_store = tmp_path / "video.zarr"
    assert (
        run(
            [
                "import",
                "--format",
                "crops-per-file",
                "--features-root",
                str(rgb),
                "--dataset",
                "xd",
                "--root",
                str(root),
                "--out",
                str(video_store),
            ]
        )
        == EXIT_OK
    )
    capsys.readouterr()
    assert run(["concat", "--store", str(video_store), "--out", str(tmp_path / "av")]) == EXIT_ERROR
    assert (
        "give exactly two --store (a video store and an audio store), got 1"
        in capsys.readouterr().err
    )
    assert (
        run(
            [
                "concat",
                "--store",
                str(video_store),
                "--store",
                str(video_store),
                "--out",
                str(tmp_path / "av"),
            ]
        )
        == EXIT_ERROR
    )
    err = capsys.readouterr().err
    assert (
        "error: give one video store and one audio store (modality audio" in err
        and "video.zarr: video" in err
    )
    assert not (tmp_path / "av").exists()
