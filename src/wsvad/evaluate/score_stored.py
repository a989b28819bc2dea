"""``wsvad score VIDEO_ID --run RUN --from-store``: a video of the run's own store, scored from its
stored features (no decoding, no backbone) with the run's scoring recipe.

It writes what ``wsvad score`` writes for a new video (``RUN/score/<id>/``); for a test video the
snippet scores equal that video's row of the run's ``scores.npz`` (the same function made both). It
also works on stores of imported features, which ``wsvad score VIDEO`` cannot recompute.
"""

from __future__ import annotations

from pathlib import Path

from wsvad.errors import WsvadError
from wsvad.evaluate.score_video import (
    ScoreResult,
    SnippetScore,
    _Mode,
    _write_outputs,
    single_run,
)


def score_stored_video(
    video_id: str,
    run: Path,
    out: Path | None = None,
    threshold: float = 0.5,
    device: str = "cpu",
) -> ScoreResult:
    """Score the stored features of ``video_id`` (a video of the run's store); write the outputs
    of :func:`wsvad.evaluate.score_video.score_video` to ``out`` (default
    ``RUN/score/<video id>/``). Latencies are 0: nothing is decoded."""
    from wsvad.data.groundtruth import snippet_scores_to_frames
    from wsvad.evaluate.plots import gt_runs
    from wsvad.pipeline.store import FeatureStore
    from wsvad.scoring.score import load_scoring_model, score_features

    run_dir, info = single_run(run)
    store_path = info.get("store")
    if not store_path or not Path(store_path).is_dir():
        raise WsvadError(f"{run_dir}: the run's feature store {store_path} is gone")
    store = FeatureStore.open(Path(store_path))
    if video_id not in store.video_ids():
        raise WsvadError(
            f"{store.path}: no complete video {video_id!r} (--from-store takes a video id of the "
            "run's store)"
        )
    model = load_scoring_model(run_dir, device=device)
    attrs = store.video_attrs(video_id)
    raw_count = attrs.get("n_snippets_raw") if store.attrs.get("bagged") else None
    scores = score_features(model.detector, model.recipe, store.read(video_id), raw_count)
    snippet_len = int(store.attrs.get("snippet_len") or 16)
    stride = int(store.attrs.get("stride") or 16)
    n_frames = int(attrs.get("n_frames") or (len(scores) - 1) * stride + snippet_len)
    frame_scores, _ = snippet_scores_to_frames(scores, n_frames, snippet_len, stride)
    snippets = [
        SnippetScore(i, i * stride, i * stride + snippet_len, float(s), 0.0)
        for i, s in enumerate(scores)
    ]
    fps = attrs.get("fps") or store.attrs.get("fps")
    scored = ScoreResult(snippets, frame_scores, fps, gt_runs(frame_scores >= threshold), {})
    out_dir = Path(out) if out is not None else Path(run) / "score" / video_id
    mode = _Mode(threshold, False, 0)
    return scored._replace(files=_write_outputs(out_dir, video_id, scored, mode, None, model.meta))
