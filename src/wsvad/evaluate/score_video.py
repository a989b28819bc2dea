"""``wsvad score VIDEO --run RUN``: one new video through the whole chain, decode -> crops -> backbone
-> the run's trained detector, with exactly the extraction settings of the store the run was trained on
(backbone and its options, resize, crop size, crops, snippet length, stride, tail rule, fps).

Offline mode scores all snippets at once, crop by crop with ``Detector.score_video``, and averages the
crops (the protocol of the test scores). Stream mode scores snippet ``i`` as soon as its frames are
decoded, from the last ``window`` snippets only (causal: detectors that look at the whole video, such as
the bag-based ones, see a sliding window), and reports the latency from the snippet's last decoded
frame to its score.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from wsvad.errors import WsvadError

log = logging.getLogger(__name__)
_RESIZE_WINDOW = 16  # frames resized per call


class ScoreSetup(NamedTuple):
    """The extraction settings the detector's training features were made with."""

    backbone: str
    backbone_options: dict
    snippet_len: int
    stride: int
    tail: str
    resize: str
    crop_size: int
    crops: int
    fps: float | None


class SnippetScore(NamedTuple):
    index: int
    start: int  # first frame (on the scoring timeline)
    end: int  # one past the last frame
    score: float
    latency: float  # seconds from the snippet's last decoded frame to its score


class ScoreResult(NamedTuple):
    snippets: list[SnippetScore]
    frame_scores: np.ndarray  # (n_frames,) float32
    fps: float | None
    intervals: list[tuple[int, int]]  # frames scored >= threshold, half-open
    files: dict[str, Path]


def setup_from_run(run: Path, crops: int | None = None) -> tuple[ScoreSetup, Path]:
    """Extraction settings (from the run's store) and the detector's path stem (``RUN/model``)."""
    from wsvad.pipeline.store import FeatureStore

    run = Path(run)
    info_path = run / "run.json"
    if not info_path.is_file():
        raise WsvadError(f"{run}: not a run directory (no run.json)")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if info.get("kind") == "multi-seed" or not (run / "model.json").is_file():
        members = sorted(p.parent for p in run.glob("seed-*/model.json"))
        if not members:
            raise WsvadError(
                f"{run}: no trained model (model.json) in the run; did training finish?"
            )
        log.info("%s: multi-seed run, scoring with %s", run, members[0].name)
        run = members[0]
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    store = info.get("store")
    if not store or not Path(store).is_dir():
        raise WsvadError(
            f"{run}: the run's feature store {store} is gone; its attrs hold the extraction settings `wsvad score` must repeat"
        )
    attrs = FeatureStore.open(Path(store)).attrs
    if (attrs.get("provenance") or {}).get("kind") == "imported":
        raise WsvadError(
            f"{store}: features imported from published files; wsvad cannot recompute them for a new video"
        )
    options = (
        attrs.get("backbone_options") or (attrs.get("config") or {}).get("backbone_options") or {}
    )
    setup = ScoreSetup(
        backbone=attrs["backbone"],
        backbone_options=dict(options),
        snippet_len=int(attrs["snippet_len"]),
        stride=int(attrs["stride"]),
        tail=str(attrs.get("tail") or "pad"),
        resize=str(attrs["resize"]),
        crop_size=int(attrs["crop_size"]),
        crops=int(crops or attrs["crops"]),
        fps=attrs.get("fps"),
    )
    return setup, run / "model"


def _frames(source: str, decoder: str) -> tuple[Iterator[np.ndarray], float | None]:
    """RGB frames of a file, frame folder (via the extract stage's readers) or a stream URL (PyAV)."""
    from wsvad.extract.decode import decode_errors, iter_frames, probe

    if "://" in source and not Path(source).exists():
        import av

        container = av.open(source)
        stream = container.streams.video[0]

        def gen() -> Iterator[np.ndarray]:
            with container:
                for frame in container.decode(stream):
                    yield frame.to_ndarray(format="rgb24")

        return gen(), float(stream.average_rate) if stream.average_rate else None
    path = Path(source)
    if not path.exists():
        raise WsvadError(f"{path}: no such video")
    last: BaseException | None = None
    for name in ["decord", "av"] if decoder == "auto" else [decoder]:
        try:
            info = probe(path, name)  # frame folders are read as images whatever the decoder
            return iter_frames(path, name), info.fps
        except decode_errors() as exc:
            last = exc
    raise WsvadError(f"{path}: cannot decode ({type(last).__name__}: {last})")


def _crops(frames: Iterator[np.ndarray], setup: ScoreSetup) -> Iterator[np.ndarray]:
    from wsvad.extract.crops import resize_and_crop

    while True:
        window = list(islice(frames, _RESIZE_WINDOW))
        if not window:
            return
        yield from resize_and_crop(
            np.stack(window), setup.resize, setup.crop_size, setup.crops
        )  # (C, S, S, 3) each


def score_video(
    source: str | Path,
    run: Path,
    out: Path | None = None,
    threshold: float = 0.5,
    stream: bool = False,
    window: int = 32,
    device: str = "cpu",
    decoder: str = "auto",
    crops: int | None = None,
    on_snippet: Callable[[SnippetScore], None] | None = None,
) -> ScoreResult:
    """Score one video; writes ``frame_scores.csv``, ``snippet_scores.csv``, ``timeline.png`` and
    ``score.json`` to ``out`` (default ``RUN/score/<video stem>/``)."""
    import torch

    from wsvad.data.groundtruth import snippet_scores_to_frames
    from wsvad.detectors.checkpoint import load_detector
    from wsvad.extract.backbones import build_backbone, get_backbone_spec
    from wsvad.extract.decode import fps_ratio, resample
    from wsvad.extract.snippets import SnippetStream

    setup, stem = setup_from_run(run, crops)
    detector, meta = load_detector(stem, device=device)
    backbone = build_backbone(setup.backbone, device=device, **setup.backbone_options)
    spec = get_backbone_spec(setup.backbone, **setup.backbone_options)
    frames, source_fps = _frames(str(source), decoder)
    fps = source_fps
    if setup.fps and source_fps:
        frames = resample(frames, fps_ratio(source_fps, setup.fps), 0, 0)
        fps = setup.fps
    snippets = SnippetStream(_crops(frames, setup), setup.snippet_len, setup.stride, setup.tail)

    def detect(feats: list[np.ndarray]) -> np.ndarray:
        x = np.stack(feats)  # (N, C, *F)
        crops_x = [
            torch.from_numpy(np.ascontiguousarray(x[:, c])).to(device) for c in range(x.shape[1])
        ]
        per_crop = [detector.score_video(xc).cpu().numpy() for xc in crops_x]
        return np.mean(per_crop, axis=0)  # (C, N) -> (N,)

    features: list[np.ndarray] = []
    results: list[SnippetScore] = []
    with torch.inference_mode():
        for index, snippet in snippets:  # snippet: (L, C, S, S, 3)
            ready = time.perf_counter()
            clip = spec.prepare(
                np.ascontiguousarray(snippet.transpose(1, 0, 2, 3, 4))
            )  # (C, 3, L, S, S)
            features.append(
                backbone(torch.from_numpy(clip).to(device)).float().cpu().numpy()
            )  # (C, *F)
            start = index * setup.stride
            if stream:
                score = float(detect(features[-window:])[-1])
                results.append(
                    SnippetScore(
                        index, start, start + setup.snippet_len, score, time.perf_counter() - ready
                    )
                )
                if on_snippet is not None:
                    on_snippet(results[-1])
            else:
                results.append(
                    SnippetScore(
                        index,
                        start,
                        start + setup.snippet_len,
                        float("nan"),
                        time.perf_counter() - ready,
                    )
                )
        if not features:
            raise WsvadError(
                f"{source}: no complete {setup.snippet_len}-frame snippet (tail rule {setup.tail})"
            )
        if not stream:
            offline = detect(features)
            results = [r._replace(score=float(s)) for r, s in zip(results, offline)]
    n_frames = int(snippets.n_frames or 0)
    frame_scores, _ = snippet_scores_to_frames(
        np.array([r.score for r in results]), n_frames, setup.snippet_len, setup.stride
    )
    from wsvad.evaluate.plots import gt_runs

    intervals = gt_runs(frame_scores >= threshold)
    out_dir = Path(out) if out is not None else Path(run) / "score" / Path(str(source)).stem
    files = _write_outputs(
        out_dir,
        source,
        results,
        frame_scores,
        fps,
        intervals,
        threshold,
        stream,
        window,
        setup,
        meta,
    )
    return ScoreResult(results, frame_scores, fps, intervals, files)


def _write_outputs(
    out_dir: Path,
    source,
    results: list[SnippetScore],
    frame_scores: np.ndarray,
    fps: float | None,
    intervals: list[tuple[int, int]],
    threshold: float,
    stream: bool,
    window: int,
    setup: ScoreSetup,
    meta: dict[str, Any],
) -> dict[str, Path]:
    from wsvad.evaluate.plots import plot_timeline
    from wsvad.evaluate.report import write_json_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "frames": out_dir / "frame_scores.csv",
        "snippets": out_dir / "snippet_scores.csv",
        "timeline": out_dir / "timeline.png",
        "summary": out_dir / "score.json",
    }
    seconds = (lambda f: f"{f / fps:.3f}") if fps else (lambda f: "")
    _write_text(
        files["frames"],
        ["frame,time_s,score"] + [f"{i},{seconds(i)},{s:.6f}" for i, s in enumerate(frame_scores)],
    )
    _write_text(
        files["snippets"],
        ["snippet,start_frame,end_frame,score,latency_ms"]
        + [f"{r.index},{r.start},{r.end},{r.score:.6f},{1000 * r.latency:.1f}" for r in results],
    )
    plot_timeline(
        files["timeline"],
        (frame_scores >= threshold).astype(np.uint8),
        {"score": frame_scores},
        title=f"{Path(str(source)).name} ({'stream' if stream else 'offline'})",
        threshold=threshold,
        shade_label=f"score >= {threshold:g}",
    )
    write_json_atomic(
        files["summary"],
        {
            "source": str(source),
            "mode": "stream" if stream else "offline",
            "window": window if stream else None,
            "threshold": threshold,
            "fps": fps,
            "n_frames": len(frame_scores),
            "n_snippets": len(results),
            "intervals": [
                {
                    "start": s,
                    "end": e,
                    "start_s": s / fps if fps else None,
                    "end_s": e / fps if fps else None,
                }
                for s, e in intervals
            ],
            "setup": setup._asdict(),
            "detector": meta.get("detector"),
            "model_seed": meta.get("seed"),
            "mean_latency_ms": 1000 * float(np.mean([r.latency for r in results])),
        },
    )
    return files


def _write_text(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def describe_interval(start: int, end: int, fps: float | None) -> str:
    """A half-open frame interval for people.

    >>> describe_interval(120, 241, 25.0), describe_interval(0, 16, None)
    ('frames 120-240 (4.80 s - 9.64 s)', 'frames 0-15')
    """
    text = f"frames {start}-{end - 1}"
    return f"{text} ({start / fps:.2f} s - {end / fps:.2f} s)" if fps else text


__all__ = [
    "ScoreResult",
    "ScoreSetup",
    "SnippetScore",
    "describe_interval",
    "score_video",
    "setup_from_run",
]
