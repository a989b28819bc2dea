"""An imported VGGish audio store paired with a video store, as the salient detector with BiLSTM
needs."""

from __future__ import annotations

import numpy as np
import pytest

from wsvad.errors import WsvadError
from wsvad.pipeline.store import FeatureStore
from wsvad.transfer import (
    ImportConfig,
    ListFile,
    concat_modalities,
    concat_stores,
    pair_stores,
    run_import,
)

VIOLENT = "Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6"
NORMAL = "A.Beautiful.Mind.2001__#00-01-45_00-02-50_label_A"


def test_concat_modalities_values():
    video = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    audio = np.array([[10.0], [20.0]], dtype=np.float32)  # one snippet shorter, as in XDVioDet
    out = concat_modalities(video, audio)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[0, 1, 10], [2, 3, 10]], [[4, 5, 20], [6, 7, 20]]])
    with pytest.raises(ValueError, match="audio features have 2 crops, expected 1"):
        concat_modalities(video, np.zeros((3, 2, 1)))


def _import_xd(kit, tmp_path, audio_lengths):
    feats = tmp_path / "feats"
    lines = []
    for i, vid in enumerate([VIOLENT, NORMAL]):
        for k in range(5):
            kit.save(feats / "RGBTest" / f"{vid}__{k}.npy", (6, 4), seed=10 * i + k)
            lines.append(f"/media/peng/Samsung_T5/i3d-features/RGBTest/{vid}__{k}.npy")
        kit.save(feats / "vggish" / f"{vid}__vggish.npy", (audio_lengths[i], 3), seed=100 + i)
    (tmp_path / "rgb_test.list").write_text("\n".join(lines) + "\n")
    (tmp_path / "audio_test.list").write_text(
        f"/x/{VIOLENT}__vggish.npy\n/x/{NORMAL}__vggish.npy\n"
    )
    run_import(
        ImportConfig(
            format="crops-per-file",
            features_root=feats / "RGBTest",
            out=tmp_path / "rgb",
            lists=[ListFile(path=tmp_path / "rgb_test.list")],
        )
    )
    run_import(
        ImportConfig(
            format="vggish",
            features_root=feats / "vggish",
            out=tmp_path / "audio",
            lists=[ListFile(path=tmp_path / "audio_test.list")],
        )
    )


def test_concat_stores_builds_a_trainable_store(kit, tmp_path):
    _import_xd(kit, tmp_path, audio_lengths=[5, 6])
    video, audio = FeatureStore.open(tmp_path / "rgb"), FeatureStore.open(tmp_path / "audio")
    combined, pairing = concat_stores(tmp_path / "rgb", tmp_path / "audio", tmp_path / "mix")
    assert pairing.common == sorted([VIOLENT, NORMAL]) and not pairing.missing_audio
    assert (combined.crops, combined.feature_shape) == (5, (7,))
    assert combined.attrs["backbone"] == "imported:i3d+imported:vggish"
    assert combined.attrs["provenance"]["kind"] == "imported"
    mixed = combined.read(VIOLENT)
    assert mixed.shape == (5, 5, 7)  # the audio is one snippet shorter
    np.testing.assert_array_equal(mixed[:, :, :4], video.read(VIOLENT)[:5])
    np.testing.assert_array_equal(mixed[:, 3, 4:], audio.read(VIOLENT)[:, 0])
    attrs = combined.video_attrs(NORMAL)
    assert (attrs["split"], attrs["label"], attrs["n_snippets"], attrs["n_snippets_audio"]) == (
        "test",
        0,
        6,
        6,
    )


def test_pairing_leaves_out_misaligned_and_refuses_wrong_stores(kit, tmp_path):
    _import_xd(kit, tmp_path, audio_lengths=[2, 6])
    combined, pairing = concat_stores(tmp_path / "rgb", tmp_path / "audio", tmp_path / "mix")
    assert (
        pairing.length_gaps == {VIOLENT: (6, 2)} and pairing.usable == [NORMAL] and pairing.partial
    )
    assert combined.video_ids() == [NORMAL] and combined.attrs["expected_videos"] == [NORMAL]
    with pytest.raises(
        WsvadError,
        match=(
            r"audio: no video can be paired with .*rgb \(1 in both; 1 differ by more than one "
            r"snippet \(e\.g\. Bad\.Boys.*: 6 vs 2\)\)"
        ),
    ):
        _only_violent = FeatureStore.open(tmp_path / "rgb")
        _only_violent.delete_video(NORMAL)
        concat_stores(tmp_path / "rgb", tmp_path / "audio", tmp_path / "mix2")
    with pytest.raises(WsvadError, match=r"rgb: not an audio store \(modality 'video'\)"):
        pair_stores(FeatureStore.open(tmp_path / "audio"), FeatureStore.open(tmp_path / "rgb"))
