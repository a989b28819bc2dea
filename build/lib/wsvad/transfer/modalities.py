"""Pairing an imported audio store (XD-Violence VGGish) with a video store of the same videos.

Wu et al. (ECCV 2020, XDVioDet ``dataset.py``) concatenate RGB and audio features per snippet along
the feature axis; when the two lengths differ (the audio sequence is one shorter) they drop the last
RGB snippet. :func:`concat_modalities` generalises that to "keep the common prefix", and copies the
single audio row to every crop, as their per-crop RGB lines all share one audio file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wsvad.config import config_hash
from wsvad.errors import WsvadError
from wsvad.pipeline.store import FeatureStore
from wsvad.transfer.config import ConcatConfig


def concat_modalities(video: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """Concatenate per-snippet video and audio features.

    Args:
        video: ``(T, C, Dv)`` features of one video.
        audio: ``(Ta, 1, Da)`` (an audio store's array) or ``(Ta, Da)``.

    Returns:
        ``(min(T, Ta), C, Dv + Da)``, audio repeated over the crops.

    >>> concat_modalities(np.zeros((5, 2, 3)), np.ones((4, 1, 2))).shape
    (4, 2, 5)
    """
    if audio.ndim == 3:
        if audio.shape[1] != 1:
            raise ValueError(f"audio features have {audio.shape[1]} crops, expected 1")
        audio = audio[:, 0]
    if video.ndim != 3 or audio.ndim != 2:
        raise ValueError(
            f"expected video (T, C, D) and audio (T, D), got {video.shape} and {audio.shape}"
        )
    t = min(len(video), len(audio))
    # (t, Da) -> (t, C, Da)
    tiled = np.broadcast_to(audio[:t, None, :], (t, video.shape[1], audio.shape[1]))
    return np.concatenate([video[:t], tiled.astype(video.dtype, copy=False)], axis=2)


@dataclass
class Pairing:
    """How two stores line up: ids in both, ids in only one, and length gaps larger than one
    snippet."""

    common: list[str]
    missing_audio: list[str] = field(default_factory=list)
    missing_video: list[str] = field(default_factory=list)
    length_gaps: dict[str, tuple[int, int]] = field(
        default_factory=dict
    )  # id -> (T video, T audio)

    @property
    def usable(self) -> list[str]:
        """The videos that are concatenated: in both stores, lengths within one snippet."""
        return [vid for vid in self.common if vid not in self.length_gaps]

    @property
    def partial(self) -> bool:
        return bool(self.missing_audio or self.missing_video or self.length_gaps)


def pair_stores(video_store: FeatureStore, audio_store: FeatureStore) -> Pairing:
    """Check that ``audio_store`` can be concatenated with ``video_store`` video by video."""
    if audio_store.attrs.get("modality") != "audio":
        raise WsvadError(
            f"{audio_store.path}: not an audio store "
            f"(modality {audio_store.attrs.get('modality')!r})"
        )
    if audio_store.crops != 1:
        raise WsvadError(
            f"{audio_store.path}: an audio store holds one crop, this one has {audio_store.crops}"
        )
    video_ids, audio_ids = set(video_store.video_ids()), set(audio_store.video_ids())
    pairing = Pairing(
        common=sorted(video_ids & audio_ids),
        missing_audio=sorted(video_ids - audio_ids),
        missing_video=sorted(audio_ids - video_ids),
    )
    for vid in pairing.common:
        tv, ta = video_store.array(vid).shape[0], audio_store.array(vid).shape[0]
        # XDVioDet's own data differ by at most one snippet; more means misaligned features.
        if abs(tv - ta) > 1:
            pairing.length_gaps[vid] = (tv, ta)
    return pairing


LENGTH_RULE = (
    "equal or one snippet apart: common prefix (XDVioDet MIX2 drops the last RGB snippet); "
    "more: video left out"
)
# Extraction attrs the concatenated store takes from the video store (the audio store has none).
_VIDEO_ATTRS = (
    "dataset",
    "snippet_len",
    "stride",
    "tail",
    "fps",
    "resize",
    "crop_size",
    "crop_order",
    "decoder",
)


def concat_stores(
    video_path: Path, audio_path: Path, out: Path, *, overwrite: bool = False
) -> tuple[FeatureStore, Pairing]:
    """Write a store whose features are video and audio concatenated, for detectors that take one
    input.

    The ``salient`` detector with its BiLSTM (Watanabe et al., ICIP 2022 "salient features",
    Sec. 4.3) reads I3D + VGGish as one ``(Dv + Da)`` vector per snippet, as Wu et al. do; this
    materialises that input once so the train stage needs no second store.

    Length rule (:data:`LENGTH_RULE`): XDVioDet's ``dataset.py`` concatenates equal lengths as they
    are and otherwise drops the last RGB snippet, i.e. it assumes the audio is at most one snippet
    shorter; here both one-off cases keep the common prefix, and a video whose lengths differ by
    more (misaligned features, which XDVioDet would fail on) is left out, like videos missing from
    either store (see the returned :class:`Pairing`). Per-video attrs (split, label, intervals,
    n_frames...) are the video store's.

    Returns:
        The new store and the pairing it was built from. Re-running resumes (complete videos
        skipped).

    Raises:
        WsvadError: not an audio store, a multi-axis video feature, or no video usable at all.
    """
    video, audio = FeatureStore.open(video_path), FeatureStore.open(audio_path)
    pairing = pair_stores(video, audio)
    if not pairing.usable:
        detail = ""
        if pairing.length_gaps:
            vid, (tv, ta) = next(iter(pairing.length_gaps.items()))
            detail = (
                f"; {len(pairing.length_gaps)} differ by more than one snippet "
                f"(e.g. {vid}: {tv} vs {ta})"
            )
        raise WsvadError(
            f"{audio_path}: no video can be paired with {video_path} "
            f"({len(pairing.common)} in both{detail})"
        )
    if len(video.feature_shape) != 1:
        raise WsvadError(
            f"{video_path}: feature shape {list(video.feature_shape)} cannot be concatenated "
            "(expected [D])"
        )
    attrs = _concat_attrs(video, audio, video_path, audio_path, pairing)
    combined = FeatureStore.create(out, attrs, overwrite=overwrite)
    combined.clean_tmp()
    for vid in pairing.usable:
        if not combined.has_video(vid):
            meta = video.video_attrs(vid)
            meta["n_snippets_audio"] = audio.array(vid).shape[0]
            combined.write_video(vid, concat_modalities(video.read(vid), audio.read(vid)), meta)
    return combined, pairing


def _concat_attrs(
    video: FeatureStore,
    audio: FeatureStore,
    video_path: Path,
    audio_path: Path,
    pairing: Pairing,
) -> dict:
    """The concatenated store's attrs: the video store's extraction attrs, both provenances, and
    the two inputs as its config (so a re-run with the same inputs resumes)."""
    va, aa = video.attrs, audio.attrs
    source = {
        "video": {"path": str(Path(video_path).resolve()), "config_hash": va.get("config_hash")},
        "audio": {"path": str(Path(audio_path).resolve()), "config_hash": aa.get("config_hash")},
    }
    kinds = {va.get("provenance", {}).get("kind"), aa.get("provenance", {}).get("kind")}
    attrs = {k: va.get(k) for k in _VIDEO_ATTRS}
    attrs.update(
        provenance={
            "kind": "imported" if "imported" in kinds else "extracted",
            "concatenated": source,
            "video": va.get("provenance"),
            "audio": aa.get("provenance"),
            "length_rule": LENGTH_RULE,
        },
        backbone=f"{va.get('backbone')}+{aa.get('backbone')}",
        feature_shape=[video.feature_shape[0] + audio.feature_shape[0]],
        dtype=video.dtype,
        crops=video.crops,
        modality="video+audio",
        config=source,
        config_hash=config_hash(source),
        expected_videos=pairing.usable,
    )
    return attrs


def run_concat(cfg: ConcatConfig) -> tuple[FeatureStore, Pairing]:
    """``wsvad concat``: the two stores of ``cfg.stores`` in any order; the one whose ``modality``
    is ``audio`` is the audio store."""
    first, second = (FeatureStore.open(p) for p in cfg.stores)
    audio_first = first.attrs.get("modality") == "audio"
    if audio_first == (second.attrs.get("modality") == "audio"):
        kinds = ", ".join(
            f"{p}: {s.attrs.get('modality') or 'video'}"
            for p, s in zip(cfg.stores, (first, second), strict=True)  # validated: two stores
        )
        raise WsvadError(
            "give one video store and one audio store "
            f"(modality audio, e.g. `wsvad import --format vggish`); got {kinds}"
        )
    video_path, audio_path = (
        (cfg.stores[1], cfg.stores[0]) if audio_first else (cfg.stores[0], cfg.stores[1])
    )
    return concat_stores(video_path, audio_path, cfg.out, overwrite=cfg.overwrite)
