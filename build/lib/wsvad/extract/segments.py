"""Sultani's feature pipeline as an extract option: a video's snippet features cut into T segments.

With ``segments: 32`` (and ``segment_rule: sultani``) a store holds what Sultani et al.'s released
C3D features hold: 32 rounded-linspace segment means per video, each L2-normalised. The reduction is
:func:`wsvad.pipeline.bags.segment_into_bags`, the same code the train stage's bag cache uses.

It needs every snippet of the video, so it runs when a video is published: after its single task,
or after the assembly of a long video's pieces (pieces stay raw snippets).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wsvad.extract.config import ExtractConfig
from wsvad.pipeline.bags import segment_into_bags
from wsvad.pipeline.store import FeatureStore, VideoWriter


def segment_attrs(cfg: ExtractConfig) -> dict[str, Any]:
    """Store-level attrs saying whether rows are snippets or segments.

    ``bagged`` has the meaning the importer gives it for Sultani's published files:
    ``{"rule", "T"}`` when each row is already a bag, ``None`` for snippet rows.
    """
    if cfg.segments is None:
        return {"segments": None, "segment_rule": None, "bagged": None}
    return {
        "segments": cfg.segments,
        "segment_rule": cfg.segment_rule,
        "bagged": {"rule": cfg.segment_rule, "T": cfg.segments},
    }


def publish(
    store: FeatureStore, writer: VideoWriter, attrs: dict[str, Any], cfg: ExtractConfig
) -> None:
    """Commit the video in ``writer``; with ``cfg.segments`` its raw snippet rows are first
    replaced by segments.

    Per-video attrs keep the true ``n_frames`` and add ``n_snippets_raw`` (N before segmenting);
    ``n_snippets`` is the stored row count T, as for every store.
    """
    if cfg.segments is None:
        writer.commit(attrs)
        return
    import zarr

    # (N, C, *F), the not yet published snippet rows
    raw = zarr.open_array(str(writer.tmp_dir), mode="r")
    try:
        # one crop at a time bounds memory for hour-long 10-crop videos; the rule acts on each crop
        # alone: (N, *F) per crop -> (T, C, *F)
        per_crop = [
            segment_into_bags(raw[:, crop], cfg.segments, cfg.segment_rule)
            for crop in range(raw.shape[1])
        ]
        bags = np.stack(per_crop, axis=1)
        with store.writer(writer.video_id, chunk_t=cfg.chunk_t) as segmented:
            segmented.append(bags)
            segmented.commit({**attrs, "n_snippets_raw": int(raw.shape[0])})
    finally:
        # the raw rows: published work is never lost, a crash leaves only .tmp debris
        writer.abort()
