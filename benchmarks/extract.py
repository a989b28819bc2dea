"""Extraction speed: bare backbone forward rate vs the full pipeline, on the same generated 320x240
video.

The pipeline (decode -> resize -> crops -> snippets -> model -> zarr) should reach the bare forward
rate (issue #19, goal 1): >= 0.9 of it with 10 crops and >= 0.8 with 1 crop, in fp32 and in bf16.
Decoding and cropping run in the worker's prefetch thread while the model computes, so only the part
of them that does not overlap costs anything. Each ratio is printed next to its goal; with a load
average above the core count the figures are marked "under load" (not the machine's figures).
Rates are frame-crops/s (frames x crops through the model per second); the model is built and warmed
before timing.

Run: ``python benchmarks/extract.py [--backbone all] [--crops 1,10] [--device cpu] [--frames 64]
[--workers 0] [--threads 2] [--precision fp32,bf16] [--compile]``. ``--backbone all`` (the default)
times i3d, i3d with keep_time (64-frame snippets), c3d and i3d_r50 and prints one table; c3d and
i3d_r50 run with seeded random weights of the published key layout unless ``--c3d-weights`` /
``--r50-weights`` name the real files (the real weights are not redistributable; speed is the same).
``--workers 0`` runs inline (no dask); N >= 1 uses a local dask cluster, whose start-up and model
loading are then part of the pipeline time. With ``--device cuda`` the GPU utilisation during the
pipeline run is sampled (``torch.cuda.utilization``, else ``nvidia-smi``) and reported; without a
usable GPU the script says so and exits with code 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_video  # noqa: E402  (the same PyAV writer the tests use)

from wsvad.extract.accel import autocast  # noqa: E402
from wsvad.extract.config import ExtractConfig, resolve_config  # noqa: E402
from wsvad.extract.run import run_extract  # noqa: E402
from wsvad.extract.worker import _MODELS, get_model  # noqa: E402

# (label, registry key, backbone options); "weights" is filled in by backbone_variants()
VARIANTS = {
    "i3d": ("i3d", {}),
    "i3d_keep_time": ("i3d", {"keep_time": True}),
    "c3d": ("c3d", {"weights": None}),
    "i3d_r50": ("i3d_r50", {"weights": None}),
}


def backbone_variants(
    choice: str, tmp: Path, weights: dict[str, str | None]
) -> list[tuple[str, str, dict]]:
    """The (label, backbone, options) rows to time; weightless c3d/i3d_r50 get random weights of
    their layout."""
    from wsvad.extract.backbones.weights import write_random_weights

    labels = list(VARIANTS) if choice == "all" else [choice]
    rows = []
    for label in labels:
        name, options = VARIANTS.get(label, (label, {}))
        options = dict(options)
        if "weights" in options:
            given = weights.get(name)
            if given is None:
                module = importlib.import_module(f"wsvad.extract.backbones.{name}")
                given = str(
                    write_random_weights(tmp / f"{name}-random.safetensors", module.expected_keys())
                )
                label += " (random weights)"
            options["weights"] = given
        rows.append((label, pick_backbone(name), options))
    return rows


def pick_backbone(name: str) -> str:
    if name != "i3d":
        return name
    try:
        import wsvad.extract.backbones.i3d  # noqa: F401
    except ImportError as exc:
        print(
            f"i3d is not importable ({exc}); falling back to random3d, whose rates say nothing "
            "about i3d"
        )
        return "random3d"
    return "i3d"


def bare_rate(cfg: ExtractConfig, n_clips: int) -> tuple[float, float]:
    """Frame-crops per wall second and per CPU second of the model alone, in the pipeline's batch
    size."""
    model, spec = get_model(cfg)
    # the pipeline's batches: batch_clips // crops snippets of all crops, never more clips than the
    # video has
    per_batch = min(max(1, cfg.batch_clips // cfg.crops) * cfg.crops, n_clips)
    clips = np.random.default_rng(0).integers(
        0, 256, (per_batch, cfg.snippet_len, cfg.crop_size, cfg.crop_size, 3), dtype=np.uint8
    )
    batch = torch.from_numpy(spec.prepare(clips)).to(cfg.device)
    with torch.inference_mode(), autocast(cfg):
        model(
            batch
        )  # warm-up: first-call allocations and kernel selection (cudnn.benchmark autotuning)
        synchronize(cfg.device)
        done, began, cpu = 0, time.perf_counter(), time.process_time()
        while done < n_clips:
            model(batch)
            done += per_batch
        synchronize(cfg.device)  # CUDA calls return before the GPU is done
    frame_crops = done * cfg.snippet_len
    return frame_crops / (time.perf_counter() - began), frame_crops / (time.process_time() - cpu)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


class GpuSampler:
    """Samples the GPU's utilisation (percent of time a kernel ran) every 0.2 s in a thread."""

    def __init__(self, device: str):
        self.index = int(device.split(":")[1]) if ":" in device else 0
        self.samples: list[float] = []
        self.source = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> float | None:
        try:
            value = float(torch.cuda.utilization(self.index))  # needs pynvml (or amdsmi)
            self.source = "torch.cuda.utilization"
            return value
        except Exception:  # noqa: BLE001 - fall back to nvidia-smi, then give up
            try:
                out = subprocess.run(
                    [
                        "nvidia-smi",
                        "--query-gpu=utilization.gpu",
                        "--format=csv,noheader,nounits",
                        "-i",
                        str(self.index),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=5,
                )
                self.source = "nvidia-smi"
                return float(out.stdout.strip().splitlines()[0])
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return None

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            value = self._sample()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> GpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> str:
        if not self.samples:
            return "GPU utilisation: unavailable (neither pynvml nor nvidia-smi answered)"
        return (
            f"GPU utilisation ({self.source}, {len(self.samples)} samples): mean "
            f"{np.mean(self.samples):.0f} %, max {max(self.samples):.0f} %; peak memory "
            f"{torch.cuda.max_memory_allocated(self.index) / 2**30:.2f} GiB"
        )


def pipeline_rate(cfg: ExtractConfig) -> tuple[float, float, int]:
    """Like :func:`bare_rate` for the whole pipeline; the CPU figure includes decoding and
    cropping."""
    cpu = time.process_time()
    summary = run_extract(cfg)
    if summary.failures:
        raise SystemExit(f"extraction failed: {summary.failures}")
    cpu = time.process_time() - cpu
    if (
        cfg.cluster.kind != "inline"
    ):  # the work ran in other processes: this process's CPU says nothing
        cpu = float("nan")
    return (
        summary.frame_crops / summary.seconds,
        summary.frame_crops / cpu,
        summary.frame_crops // cfg.snippet_len,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbone",
        default="all",
        help=f"all, one of {', '.join(VARIANTS)}, or any registered backbone (default: all)",
    )
    parser.add_argument(
        "--c3d-weights", default=None, help="real C3D weights (default: random, same layout)"
    )
    parser.add_argument(
        "--r50-weights", default=None, help="real i3d_r50 weights (default: random, same layout)"
    )
    parser.add_argument(
        "--crops", default="1,10", help="comma-separated crop counts (default: 1,10)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    parser.add_argument(
        "--frames", type=int, default=64, help="frames of the generated video (default: 64)"
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="0 inline, N local dask workers (default: 0)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per worker (default: cores/workers)",
    )
    parser.add_argument(
        "--precision",
        default="fp32,bf16",
        help="comma-separated autocast precisions: fp32, bf16, fp16 (default: fp32,bf16)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the backbone (default: off)"
    )
    parser.add_argument(
        "--batch-clips", type=int, default=10, help="clips per forward pass (default: 10)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            f"--device {args.device}: no CUDA here (torch {torch.__version__}, CUDA build "
            f"{torch.version.cuda or 'none'}); nothing to measure. Expected GPU times from FLOPs "
            "are in docs/cluster.md"
        )
    cluster = (
        {"kind": "inline"} if args.workers == 0 else {"kind": "local", "workers": args.workers}
    )
    cluster["threads_per_worker"] = args.threads
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "videos"
        write_video(root / "bench.mp4", n_frames=args.frames, size=(320, 240))
        variants = backbone_variants(
            args.backbone, Path(tmp), {"c3d": args.c3d_weights, "i3d_r50": args.r50_weights}
        )
        print(
            f"device {args.device}, {args.frames} frames of 320x240, workers {args.workers}, "
            f"{load_note()}"
        )
        print(
            "fc/s = frame-crops per wall-clock second; cpu = per CPU second of this process (all "
            "threads),\nwhich is what the ratio means on a machine shared with other jobs. bare = "
            "mean of a run before\nand after the pipeline run. goal: pipeline / bare (issue #19)."
        )
        width = max(len(label) for label, _, _ in variants)
        print(
            f"{'backbone':<{width}} {'crops':>5} {'prec':>4} {'bare fc/s':>10} "
            f"{'pipeline fc/s':>14} {'ratio':>6} {'bare cpu':>9} {'pipe cpu':>9} {'ratio':>6} "
            f"{'goal':>6}"
        )
        for index, (label, backbone, options) in enumerate(variants):
            for crops in (int(c) for c in args.crops.split(",")):
                for precision in args.precision.split(","):
                    cfg = resolve_config(
                        ExtractConfig(
                            dataset="folder",
                            root=root,
                            out=Path(tmp) / f"store{index}-{crops}-{precision}",
                            backbone=backbone,
                            backbone_options=options,
                            device=args.device,
                            crops=crops,
                            tail="pad",
                            cluster=cluster,
                            precision=precision,
                            compile=args.compile,
                            batch_clips=args.batch_clips,
                        )
                    )
                    row = time_config(cfg, args.frames)
                    print(f"{label:<{width}} {crops:>5} {precision:>4} {row}", flush=True)
            # one backbone in memory at a time (i3d_r50 and c3d hold ~100-300 MB each)
            _MODELS.clear()


GOALS = {1: 0.8, 5: 0.9, 10: 0.9}  # pipeline / bare forward rate, by crops (issue #19, goal 1)


def load_note() -> str:
    """The load average, and "UNDER LOAD" when other jobs compete for the cores."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    note = f"load average {load:.1f} on {cores} cores"
    if load > cores * 0.75:
        note += " -- UNDER LOAD: these are not the machine's figures"
    return note


def time_config(cfg: ExtractConfig, frames: int) -> str:
    """The table row (after backbone and crops) of one configuration."""
    torch.set_num_threads(cfg.torch_threads)
    get_model(cfg)  # built once per worker in the pipeline too; keep it out of both timings
    n_clips = -(-frames // cfg.stride) * cfg.crops  # tail=pad: ceil(frames / stride) snippets
    before = bare_rate(cfg, n_clips)
    if cfg.device.startswith("cuda"):
        with GpuSampler(cfg.device) as sampler:
            piped, piped_cpu, _ = pipeline_rate(cfg)
    else:
        piped, piped_cpu, _ = pipeline_rate(cfg)
    after = bare_rate(cfg, n_clips)
    bare, bare_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    goal = GOALS[cfg.crops]
    verdict = "met" if piped / bare >= goal else "NOT met"
    row = (
        f"{bare:>10.1f} {piped:>14.1f} {piped / bare:>6.2f} {bare_cpu:>9.1f} {piped_cpu:>9.1f} "
        f"{piped_cpu / bare_cpu:>6.2f} {'>= ' + format(goal, '.1f'):>6} {verdict}"
    )
    return row + (f"\n      {sampler.report()}" if cfg.device.startswith("cuda") else "")


if __name__ == "__main__":
    main()
