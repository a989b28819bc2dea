"""``wsvad score VIDEO --run RUN``: one new video through the whole chain, decode -> crops ->
backbone -> the run's trained detector, with exactly the extraction settings of the store the run
was trained on (backbone and its options, resize, crop size, crops, snippet length, stride, tail
rule, fps).

Offline mode scores all snippets at once with :func:`wsvad.scoring.score.score_features` and the
run's scoring recipe (crops, bags, pooling, ``score_on``), the function that made the run's test
scores, so a stored test video scores as in ``scores.npz``. Live scoring, snippet by snippet with
each detector's causal rule, is ``wsvad score --stream`` (:mod:`wsvad.evaluate.stream`), which
reuses this module's run setup, frame readers and model chain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from wsvad.atomic import write_text_atomic
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


def single_run(run: Path) -> tuple[Path, dict[str, Any]]:
    """The run directory whose model scores (a multi-seed run: its first seed) and its run.json."""
    from wsvad.evaluate.inputs import read_json_object

    run = Path(run)
    info_path = run / "run.json"
    if not info_path.is_file():
        raise WsvadError(f"{run}: not a run directory (no run.json)")
    info = read_json_object(info_path)
    if info.get("kind") == "multi-seed" or not (run / "model.json").is_file():
        members = sorted(p.parent for p in run.glob("seed-*/model.json"))
        if not members:
            raise WsvadError(
                f"{run}: no trained model (model.json) in the run; did training finish?"
            )
        log.info("%s: multi-seed run, scoring with %s", run, members[0].name)
        run = members[0]
        info = read_json_object(run / "run.json")
    return run, info


def setup_from_run(run: Path, crops: int | None = None) -> tuple[ScoreSetup, Path]:
    """Extraction settings (from the run's store) and the detector's path stem (``RUN/model``)."""
    from wsvad.pipeline.store import FeatureStore

    run, info = single_run(run)
    store = info.get("store")
    if not isinstance(store, str) or not store or not Path(store).is_dir():
        raise WsvadError(
            f"{run}: the run's feature store {store} is gone; its attrs hold the extraction "
            "settings `wsvad score` must repeat"
        )
    opened = FeatureStore.open(Path(store))
    attrs = opened.attrs
    if opened.provenance_kind == "imported":
        raise WsvadError(
            f"{store}: features imported from published files; wsvad cannot recompute them for a "
            "new video"
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
    """RGB frames of a file, a frame folder (the extract stage's readers) or a stream URL (PyAV)."""
    from wsvad.extract.decode import DecodeError, iter_frames, probe

    if "://" in source and not Path(source).exists():
        # the live scorer's opener: one PyAV path for URLs (errors in one line, end of stream)
        from wsvad.evaluate.stream_sources import open_source

        opened = open_source(source)
        return (frame for frame, _ in opened.frames), opened.fps
    path = Path(source)
    if not path.exists():
        raise WsvadError(f"{path}: no such video")
    last: DecodeError | None = None
    for name in ["decord", "av"] if decoder == "auto" else [decoder]:
        try:
            info = probe(path, name)  # frame folders are read as images whatever the decoder
            return iter_frames(path, name), info.fps
        except DecodeError as exc:
            last = exc
    raise WsvadError(f"{path}: cannot decode ({last.kind}: {last})")


def _crops(frames: Iterator[np.ndarray], setup: ScoreSetup) -> Iterator[np.ndarray]:
    from wsvad.extract.crops import resize_and_crop

    while True:
        window = list(islice(frames, _RESIZE_WINDOW))
        if not window:
            return
        # one (C, S, S, 3) array per frame
        yield from resize_and_crop(np.stack(window), setup.resize, setup.crop_size, setup.crops)


def score_video(
    source: str | Path,
    run: Path,
    out: Path | None = None,
    threshold: float = 0.5,
    device: str = "cpu",
    decoder: str = "auto",
    crops: int | None = None,
) -> ScoreResult:
    """Score one video; writes ``frame_scores.csv``, ``snippet_scores.csv``, ``timeline.png`` and
    ``score.json`` to ``out`` (default ``RUN/score/<video stem>/``).

    Steps: the run's extraction settings and models, the frames at the store's frame rate, the
    snippet scores, the frame scores and intervals, the output files.
    """
    from wsvad.data.groundtruth import snippet_scores_to_frames
    from wsvad.evaluate.plots import gt_runs
    from wsvad.extract.snippets import SnippetStream

    setup, stem = setup_from_run(run, crops)
    chain = _load_chain(setup, stem, device)
    frames, fps = _frames_at_run_fps(str(source), decoder, setup)
    snippets = SnippetStream(_crops(frames, setup), setup.snippet_len, setup.stride, setup.tail)
    results = _score_snippets(snippets, setup, chain)
    if not results:
        raise WsvadError(
            f"{source}: no complete {setup.snippet_len}-frame snippet (tail rule {setup.tail})"
        )
    frame_scores, _ = snippet_scores_to_frames(
        np.array([r.score for r in results]),
        int(snippets.n_frames or 0),
        setup.snippet_len,
        setup.stride,
    )
    scored = ScoreResult(results, frame_scores, fps, gt_runs(frame_scores >= threshold), {})
    out_dir = Path(out) if out is not None else Path(run) / "score" / Path(str(source)).stem
    mode = _Mode(threshold, False, 0)
    return scored._replace(files=_write_outputs(out_dir, source, scored, mode, setup, chain.meta))


class _Chain(NamedTuple):
    """The run's models on one device: the backbone of its store and its trained detector."""

    backbone: Any  # torch module: prepared clips (C, 3, L, S, S) -> features (C, *F)
    spec: Any  # the backbone's BackboneSpec (its input preparation)
    detector: Any
    meta: dict[str, Any]  # the detector's model.json
    device: str
    recipe: Any  # the run's ScoringRecipe

    def features(self, snippet: np.ndarray) -> np.ndarray:
        """``(L, C, S, S, 3)`` uint8 snippet -> ``(C, *F)`` float32 features."""
        import torch

        clip = self.spec.prepare(np.ascontiguousarray(snippet.transpose(1, 0, 2, 3, 4)))
        return self.backbone(torch.from_numpy(clip).to(self.device)).float().cpu().numpy()

    def detect(self, features: list[np.ndarray]) -> np.ndarray:
        """Snippet scores ``(N,)`` of consecutive ``(C, *F)`` features, by the run's recipe."""
        from wsvad.scoring.score import score_features

        return score_features(self.detector, self.recipe, np.stack(features))


def _load_chain(setup: ScoreSetup, stem: Path, device: str) -> _Chain:
    from wsvad.extract.backbones import build_backbone, get_backbone_spec
    from wsvad.scoring.score import load_scoring_model

    model = load_scoring_model(stem.parent, device=device)  # refuses a run without a recipe
    backbone = build_backbone(setup.backbone, device=device, **setup.backbone_options)
    spec = get_backbone_spec(setup.backbone, **setup.backbone_options)
    return _Chain(backbone, spec, model.detector, model.meta, device, model.recipe)


def _frames_at_run_fps(
    source: str, decoder: str, setup: ScoreSetup
) -> tuple[Iterator[np.ndarray], float | None]:
    """The video's frames, resampled to the store's frame rate when it had one; and their fps."""
    return at_run_fps(*_frames(source, decoder), setup)


def at_run_fps(
    frames: Iterator[np.ndarray], source_fps: float | None, setup: ScoreSetup
) -> tuple[Iterator[np.ndarray], float | None]:
    """``frames`` resampled to the store's frame rate when both rates are known, and their fps
    (as extraction resampled the run's videos); offline scoring and the stream both use it."""
    from wsvad.extract.decode import fps_ratio, resample

    if setup.fps and source_fps:
        return resample(frames, fps_ratio(source_fps, setup.fps), 0, 0), setup.fps
    return frames, source_fps


def _score_snippets(
    snippets: Iterable[tuple[int, np.ndarray]], setup: ScoreSetup, chain: _Chain
) -> list[SnippetScore]:
    """Score every snippet with the run's recipe once all are extracted; a snippet's latency is
    its backbone time (offline, its score waits for the whole video)."""
    import torch

    features: list[np.ndarray] = []
    results: list[SnippetScore] = []
    with torch.inference_mode():
        for index, snippet in snippets:  # snippet: (L, C, S, S, 3)
            ready = time.perf_counter()
            features.append(chain.features(snippet))  # (C, *F)
            start = index * setup.stride
            latency = time.perf_counter() - ready
            results.append(SnippetScore(index, start, start + setup.snippet_len, 0.0, latency))
        if features:
            offline = chain.detect(features)
            results = [r._replace(score=float(s)) for r, s in zip(results, offline, strict=True)]
    return results


class _Mode(NamedTuple):
    threshold: float
    stream: bool  # always False here: `score --stream` writes its own outputs (cli.score_stream)
    window: int


def _write_outputs(
    out_dir: Path,
    source,
    scored: ScoreResult,
    mode: _Mode,
    setup: ScoreSetup | None,
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
    _write_csvs(files["frames"], files["snippets"], scored)
    threshold = mode.threshold
    plot_timeline(
        files["timeline"],
        (scored.frame_scores >= threshold).astype(np.uint8),
        {"score": scored.frame_scores},
        title=f"{Path(str(source)).name} ({'stream' if mode.stream else 'offline'})",
        threshold=threshold,
        shade_label=f"score >= {threshold:g}",
        shade_color="tab:orange",  # a prediction, not ground truth (red in evaluate's timelines)
    )
    write_json_atomic(files["summary"], _summary(source, scored, mode, setup, meta))
    return files


def _write_csvs(frames_csv: Path, snippets_csv: Path, scored: ScoreResult) -> None:
    fps = scored.fps
    seconds = (lambda f: f"{f / fps:.3f}") if fps else (lambda f: "")
    _write_text(
        frames_csv,
        ["frame,time_s,score"]
        + [f"{i},{seconds(i)},{s:.6f}" for i, s in enumerate(scored.frame_scores)],
    )
    _write_text(
        snippets_csv,
        ["snippet,start_frame,end_frame,score,latency_ms"]
        + [
            f"{r.index},{r.start},{r.end},{r.score:.6f},{1000 * r.latency:.1f}"
            for r in scored.snippets
        ],
    )


def _summary(
    source, scored: ScoreResult, mode: _Mode, setup: ScoreSetup | None, meta: dict[str, Any]
) -> dict[str, Any]:
    """The content of ``score.json``."""
    fps = scored.fps
    return {
        "source": str(source),
        "mode": "stream" if mode.stream else "offline",
        "window": mode.window if mode.stream else None,
        "threshold": mode.threshold,
        "fps": fps,
        "n_frames": len(scored.frame_scores),
        "n_snippets": len(scored.snippets),
        "intervals": [
            {
                "start": s,
                "end": e,
                "start_s": s / fps if fps else None,
                "end_s": e / fps if fps else None,
            }
            for s, e in scored.intervals
        ],
        "setup": None if setup is None else setup._asdict(),
        "detector": meta.get("detector"),
        "model_seed": meta.get("seed"),
        "mean_latency_ms": 1000 * float(np.mean([r.latency for r in scored.snippets])),
    }


def _write_text(path: Path, lines: list[str]) -> None:
    write_text_atomic(path, "\n".join(lines) + "\n")


def describe_interval(start: int, end: int, fps: float | None) -> str:
    """A half-open frame interval for people, with the numbers score.json and the CSVs hold
    (``[start, end)``: ``end`` is the first frame after it).

    >>> describe_interval(120, 241, 25.0), describe_interval(0, 16, None)
    ('frames [120, 241) (4.80 s - 9.64 s)', 'frames [0, 16)')
    """
    text = f"frames [{start}, {end})"
    return f"{text} ({start / fps:.2f} s - {end / fps:.2f} s)" if fps else text


__all__ = [
    "ScoreResult",
    "ScoreSetup",
    "SnippetScore",
    "describe_interval",
    "score_video",
    "setup_from_run",
    "single_run",
]
