"""Plan, render and encode a synthetic surveillance dataset in the UCF-Crime layout.

Determinism: every video draws from its own generator seeded by ``(seed, split, index)`` and the
cameras from ``(seed, camera)``, and x264 runs single-threaded, so the same config gives the same
decoded frames and, with the same PyAV/x264 build, byte-identical files. ``synth.json`` carries no
timestamp for the same reason.

Labels and cameras are independent: normal and abnormal videos are filmed by the same few cameras,
so the background says nothing about the label.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from wsvad import __version__
from wsvad.atomic import atomic_path, write_text_atomic
from wsvad.data.synth.config import SynthConfig
from wsvad.data.synth.events import EVENTS, PERSISTENT, Overlay
from wsvad.data.synth.scene import (
    Scene,
    Walker,
    build_scene,
    lighting_gains,
    noise_bank,
    random_walker,
    render_base,
)
from wsvad.errors import WsvadError

log = logging.getLogger(__name__)

GENERATOR = "wsvad.synth/1"
N_CAMERAS = 4
CHUNK = 32  # frames rendered per vectorised background pass
TRAIN_NORMAL_DIR = "Training_Normal_Videos_Anomaly"
TEST_NORMAL_DIR = "Testing_Normal_Videos_Anomaly"
ANNOTATION = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
PROVENANCE = "synth.json"  # seed, parameters and per-video events; marks a folder as ours


class VideoPlan(NamedTuple):
    video_id: str
    rel_path: str
    split: str
    cls: str  # "Normal" or an event class
    index: int  # position within its split, part of the video's seed


class SynthSummary(NamedTuple):
    out: Path
    n_videos: int
    n_generated: int  # videos written by this call (the others already existed)
    n_frames: int
    seconds: float


def plan_videos(cfg: SynthConfig) -> list[VideoPlan]:
    """Names, splits and classes of every video (no randomness: a pure function of the sizes)."""
    plans: list[VideoPlan] = []
    numbers = dict.fromkeys(["Normal", *cfg.classes], 0)
    for split, n in (("train", cfg.n_train), ("test", cfg.n_test)):
        n_abnormal = min(max(1, round(n * cfg.abnormal_fraction)), n - 1)
        for i in range(n):
            cls = cfg.classes[i % len(cfg.classes)] if i < n_abnormal else "Normal"
            numbers[cls] += 1
            if cls != "Normal":
                vid = f"{cls}{numbers[cls]:03d}_x264"
                folder = cls
            elif split == "train":  # the official spellings differ between the two splits
                vid, folder = f"Normal_Videos{numbers[cls]:03d}_x264", TRAIN_NORMAL_DIR
            else:
                vid, folder = f"Normal_Videos_{numbers[cls]:03d}_x264", TEST_NORMAL_DIR
            plans.append(VideoPlan(vid, f"{folder}/{vid}.mp4", split, cls, i))
    return plans


def _event_ranges(
    rng: np.random.Generator, cls: str, n: int, fps: float, max_events: int
) -> list[tuple[int, int]]:
    """Planned ``[start, end)`` of the events of one video (the event may adjust its end)."""
    min_len = min(max(48, int(1.5 * fps)), int(0.6 * n))
    margin = max(4, int(0.08 * n))
    if cls in PERSISTENT:
        start = int(rng.uniform(0.25, 0.55) * n)
        return [(start, n)]
    two = max_events == 2 and n >= 8 * fps and rng.random() < 0.4
    spans = [(margin, n // 2), (n // 2, n - margin)] if two else [(margin, n - margin)]
    ranges = []
    for lo, hi in spans:
        share = rng.uniform(0.3, 0.5) if len(spans) == 1 else rng.uniform(0.18, 0.28)
        length = int(np.clip(share * n, min_len, hi - lo))
        start = int(rng.integers(lo, max(lo, hi - length) + 1))
        ranges.append((start, start + length))
    return ranges


def render_video(
    cfg: SynthConfig, plan: VideoPlan, scenes: list[Scene], noise: np.ndarray
) -> tuple[Callable, dict]:
    """Plan one video's content; returns a frame-chunk generator factory and its metadata."""
    rng = np.random.default_rng([cfg.seed, 0 if plan.split == "train" else 1, plan.index])
    fps = float(cfg.fps)
    n = int(round(rng.uniform(cfg.min_seconds, cfg.max_seconds) * fps))
    camera = int(rng.integers(len(scenes)))
    scene = scenes[camera]
    gains = lighting_gains(rng, n, fps)
    walkers: list[Walker] = [
        random_walker(rng, scene, n, fps, int(-rng.uniform(0, 4) * fps))
        for _ in range(rng.integers(1, 3))
    ]
    t = rng.exponential(2.5) * fps
    while t < n:  # pedestrians keep arriving, roughly one every 2.5 s
        walkers.append(random_walker(rng, scene, n, fps, int(t)))
        t += rng.exponential(2.5) * fps
    overlays: list[Overlay] = []
    events = []
    if plan.cls != "Normal":
        last_end = None
        for start, end in _event_ranges(rng, plan.cls, n, fps, cfg.max_events):
            if last_end is not None and start < last_end + 16:  # keep events a snippet apart
                break
            done = EVENTS[plan.cls](rng, scene, n, fps, start, end)
            walkers += done.walkers
            overlays += done.overlays
            events.append({"class": plan.cls, "start": done.start, "end": done.end})
            last_end = done.end

    def frames():
        for c0 in range(0, n, CHUNK):
            ids = np.arange(c0, min(c0 + CHUNK, n))
            chunk = render_base(scene, gains, noise, ids)
            for k, t in enumerate(ids):
                for w in sorted(walkers, key=lambda w: w.depth(t)):
                    w.draw(chunk[k], t, scene)
                for o in overlays:
                    o.draw(chunk[k], t, scene)
            yield np.clip(chunk, 0, 255).astype(np.uint8)

    meta = {
        "split": plan.split,
        "class": plan.cls,
        "n_frames": n,
        "fps": cfg.fps,
        "camera": camera,
        "events": events,
    }
    return frames, meta


def rgb_to_yuv420p(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[F, H, W, 3]`` RGB -> planes Y ``[F, H, W]``, U and V ``[F, H/2, W/2]`` (BT.601, limited
    range).

    Converting here rather than in swscale makes the encoder input exact: swscale picks SIMD paths
    by buffer alignment, and its rounding can then differ between runs.
    """
    rgb = chunk.transpose(3, 0, 1, 2).astype(np.float32)  # planar: contiguous channels are faster
    r, g, b = rgb

    def to_uint8(c: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(c, out=c), 0, 255, out=c).astype(np.uint8)

    y = r * (65.481 / 255)
    y += g * (128.553 / 255)
    y += b * (24.966 / 255)
    y += 16.0
    # The conversion is linear, so chroma is computed from the 2x2-averaged RGB (4x less work).
    r2, g2, b2 = (
        rgb[:, :, 0::2, 0::2]
        + rgb[:, :, 1::2, 0::2]
        + rgb[:, :, 0::2, 1::2]
        + rgb[:, :, 1::2, 1::2]
    ) * 0.25
    cb = 128.0 + (-37.797 * r2 - 74.203 * g2 + 112.0 * b2) / 255.0
    cr = 128.0 + (112.0 * r2 - 93.786 * g2 - 18.214 * b2) / 255.0
    return to_uint8(y), to_uint8(cb), to_uint8(cr)


def _video_frame(av, planes: tuple[np.ndarray, np.ndarray, np.ndarray], width: int, height: int):
    """A yuv420p ``av.VideoFrame`` from three planes, its row padding filled as well.

    FFmpeg allocates rows wider than the image (aligned line size) and leaves the padding
    uninitialised; filling it (with the last pixel of each row) keeps the encoder input identical.
    """
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, source in zip(frame.planes, planes, strict=True):  # Y, U, V
        rows = plane.buffer_size // plane.line_size
        padded = np.pad(
            source,
            ((0, rows - source.shape[0]), (0, plane.line_size - source.shape[1])),
            mode="edge",
        )
        plane.update(np.ascontiguousarray(padded))
    return frame


def encode(path: Path, chunks, width: int, height: int, fps: int, crf: int) -> None:
    """H.264 (libx264, single thread) of RGB frame chunks into ``path``, written to a temporary file
    renamed at the end."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name keeps the suffix: PyAV picks the container format from it
    with atomic_path(path, suffix=path.suffix) as tmp:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            # Single-threaded and without the lookahead: with x264's lookahead (mb-tree) the PyAV
            # wheel's build gave different bytes from run to run for the same frames unless the
            # width was a multiple of 64 (measured; asm=0 also cured it, at a large speed cost).
            stream.codec_context.thread_count = 1
            stream.options = {
                "crf": str(crf),
                "preset": "veryfast",
                "threads": "1",
                "x264-params": "rc-lookahead=0:no-mbtree=1",
            }
            for chunk in chunks:
                # One (Y, U, V) per frame: the three planes have the chunk's frame count.
                for planes in zip(*rgb_to_yuv420p(chunk), strict=True):
                    for packet in stream.encode(_video_frame(av, planes, width, height)):
                        container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def annotation_line(video_id: str, cls: str, events: list[dict]) -> str:
    """One line of the UCF temporal annotation: ends written inclusive, ``-1`` padding, 2 spaces.

    >>> annotation_line("Fighting001_x264", "Fighting", [{"start": 10, "end": 60}])
    'Fighting001_x264.mp4  Fighting  10  59  -1  -1  '
    """
    numbers = [v for e in events for v in (e["start"], e["end"] - 1)] + [-1, -1, -1, -1]
    return "  ".join([f"{video_id}.mp4", cls, *map(str, numbers[:4])]) + "  "


def generate_synthetic_dataset(
    out: Path | str,
    seed: int = 0,
    preset: str = "default",
    progress: Callable[[int, int], None] | None = None,
    **sizes,
) -> SynthSummary:
    """Write a synthetic dataset to ``out`` in the UCF-Crime layout (see :class:`SynthConfig`).

    Args:
        out: target folder; created if needed. If it already holds a dataset with the same
            parameters, the videos already there are kept (an interrupted run resumes).
        seed: the only source of randomness.
        preset: ``"default"`` (60 + 30 videos of 8-20 s, 320x240), ``"demo"`` or ``"tiny"``.
        progress: called as ``progress(done, total)`` after each video.
        **sizes: any other :class:`SynthConfig` field (``n_train=16``, ``size="160x120"``, ...).
    """
    from pydantic import ValidationError

    try:
        cfg = SynthConfig(out=Path(out), seed=seed, preset=preset, **sizes)
    except ValidationError as exc:
        from wsvad.config import format_validation_error

        raise WsvadError(format_validation_error(exc, "synth parameters")) from exc
    return write_dataset(cfg, progress)


def write_dataset(
    cfg: SynthConfig, progress: Callable[[int, int], None] | None = None
) -> SynthSummary:
    """Generate the dataset described by ``cfg`` (the ``wsvad synth`` entry point)."""
    began = time.perf_counter()
    provenance = _claim_output(cfg)
    plans = plan_videos(cfg)
    videos, generated = _write_videos(cfg, plans, progress)
    _write_lists(cfg.out, plans, videos)
    provenance = {
        **provenance,
        "complete": True,
        # the order the ucf adapter gives too, so class indices agree
        "classes": sorted(cfg.classes),
        "interval_convention": (
            "events are half-open [start, end) here; the UCF annotation writes start and "
            "end - 1 (inclusive), as the ucf adapter reads it"
        ),
        "videos": videos,
    }
    write_text_atomic(cfg.out / PROVENANCE, json.dumps(provenance, indent=1) + "\n")
    n_frames = sum(v["n_frames"] for v in videos.values())
    return SynthSummary(cfg.out, len(plans), generated, n_frames, time.perf_counter() - began)


def _claim_output(cfg: SynthConfig) -> dict:
    """Check that ``cfg.out`` is empty or an earlier run with the same parameters (which is then
    resumed), and mark it as ours with an incomplete ``synth.json``; returns that provenance.

    Raises:
        WsvadError: the folder holds something else.
    """
    out = cfg.out
    params = json.loads(cfg.model_dump_json(exclude={"out"}))
    meta_path = out / PROVENANCE
    if meta_path.is_file():
        try:
            previous = json.loads(meta_path.read_text(encoding="utf-8")).get("parameters")
        except ValueError as exc:
            raise WsvadError(f"{meta_path}: unreadable ({exc}); choose another --out") from exc
        if previous != params:
            raise WsvadError(
                f"{out}: holds a synthetic dataset made with other parameters; choose another --out"
            )
    elif out.exists() and any(out.iterdir()):
        raise WsvadError(f"{out}: exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    provenance = {
        "generator": GENERATOR,
        "wsvad_version": __version__,
        "parameters": params,
        "complete": False,
    }
    write_text_atomic(meta_path, json.dumps(provenance, indent=1) + "\n")
    return provenance


def _write_videos(
    cfg: SynthConfig, plans: list[VideoPlan], progress: Callable[[int, int], None] | None
) -> tuple[dict[str, dict], int]:
    """Render and encode every planned video not already on disk; returns the metadata of every
    video (by id) and how many were written now."""
    scenes = [
        build_scene(np.random.default_rng([cfg.seed, 1000 + k]), cfg.width, cfg.height)
        for k in range(N_CAMERAS)
    ]
    noise = noise_bank(np.random.default_rng([cfg.seed, 2000]), cfg.width, cfg.height)
    videos: dict[str, dict] = {}
    generated = 0
    for done, plan in enumerate(plans, start=1):
        frames, meta = render_video(cfg, plan, scenes, noise)
        target = cfg.out / plan.rel_path
        if not target.is_file():
            encode(target, frames(), cfg.width, cfg.height, cfg.fps, cfg.crf)
            generated += 1
        videos[plan.video_id] = {"path": plan.rel_path, **meta}
        if progress is not None:
            progress(done, len(plans))
    return videos, generated


def _write_lists(out: Path, plans: list[VideoPlan], videos: dict[str, dict]) -> None:
    """The two split lists and the temporal annotation, in the official formats."""
    for split, name in (("train", "Anomaly_Train.txt"), ("test", "Anomaly_Test.txt")):
        rels = sorted(
            p.rel_path for p in plans if p.split == split
        )  # the official lists are sorted
        write_text_atomic(out / name, "".join(f"{r}\n" for r in rels))
    lines = [
        annotation_line(p.video_id, p.cls, videos[p.video_id]["events"])
        for p in plans
        if p.split == "test"
    ]
    write_text_atomic(out / ANNOTATION, "".join(f"{line}\n" for line in sorted(lines)))
