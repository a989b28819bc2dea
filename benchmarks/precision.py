"""I3D cost and mixed-precision effect: FLOPs per frame-crop, and bf16/fp16 autocast vs fp32
features.

Counts the FLOPs of one ``[1, 3, 16, 224, 224]`` clip with
``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts as 2 FLOPs), then extracts the
same clips of a generated surveillance video (wsvad synth, 320x240) with fp32 and with autocast, and
reports the largest absolute difference and the cosine similarity of the 1024-d features. The
figures in docs/cluster.md come from this script.

Run: ``python benchmarks/precision.py [--clips 4] [--precisions bf16] [--device cpu]``. On CPU, fp16
autocast runs but is slow (no fast fp16 convolutions); measure it on a GPU.

``--auc WORK`` instead measures whether bf16 features can replace fp32 ones: it synthesises the demo
dataset into WORK (``wsvad synth``), extracts it twice (1 crop, ``--precision fp32`` and ``bf16``),
prints the per-snippet cosine of the two stores, trains the MIL detector (synthetic_mil.yaml, same
seed) on each and prints both frame AUCs. Every step resumes, so a second run only retrains.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from wsvad.data.synth import generate_synthetic_dataset
from wsvad.extract.backbones import build_backbone, get_backbone_spec
from wsvad.extract.crops import resize_and_crop
from wsvad.extract.decode import iter_frames


def count_flops(model: torch.nn.Module, device: str) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    from wsvad.extract.backbones.nets import layers

    # FlopCounterMode has no formula for torch.mkldnn_convolution (the fast CPU path of our layers),
    # so count on the plain F.conv3d path, which computes the same convolutions
    fast, layers._MKLDNN = layers._MKLDNN, False
    try:
        clip = torch.zeros(1, 3, 16, 224, 224, device=device)
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(clip)
    finally:
        layers._MKLDNN = fast
    return counter.get_total_flops()


def real_clips(n_clips: int, folder: Path) -> np.ndarray:
    """``n_clips`` 16-frame centre crops ``[n, 16, 224, 224, 3]`` of a generated surveillance
    video."""
    generate_synthetic_dataset(
        folder,
        seed=0,
        preset="tiny",
        n_train=2,
        n_test=2,
        size="320x240",
        min_seconds=max(3.0, n_clips * 16 / 24 + 0.5),
        max_seconds=max(3.5, n_clips * 16 / 24 + 1.0),
    )
    video = sorted(folder.rglob("*.mp4"))[-1]  # an anomalous test video: people moving
    frames = np.stack(list(iter_frames(video, "av"))[: n_clips * 16])
    crops = resize_and_crop(frames, "short256", 224, 1)  # (N, 1, 224, 224, 3)
    return crops[:, 0].reshape(n_clips, 16, 224, 224, 3)


def _ok(code: int, what: str) -> None:
    if code != 0:
        raise SystemExit(f"{what} failed with exit code {code}")


def store_cosines(fp32_store: Path, bf16_store: Path) -> np.ndarray:
    """Cosine of every snippet (and crop) of two stores of the same videos."""
    from wsvad.pipeline.store import FeatureStore

    left, right = FeatureStore.open(fp32_store), FeatureStore.open(bf16_store)
    cosines = []
    for vid in left.video_ids():
        a, b = left.read(vid).astype(np.float64), right.read(vid).astype(np.float64)
        a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        cosines.append((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    return np.concatenate(cosines)


def auc_effect(work: Path, seed: int) -> None:
    """fp32 vs bf16 features of the synthetic demo set: snippet cosines and the MIL frame AUC."""
    import json

    from wsvad.cli import run

    repo = Path(__file__).resolve().parents[1]
    data = work / "data"
    _ok(
        run(["synth", "--config", str(repo / "configs/synth/demo.yaml"), "--out", str(data)]),
        "synth",
    )
    aucs = {}
    for precision in ("fp32", "bf16"):
        store = work / f"features-{precision}"
        extract = ["extract", "--dataset", "ucf", "--root", str(data), "--crops", "1"]
        _ok(run([*extract, "--out", str(store), "--precision", precision]), f"extract {precision}")
        out = work / "runs" / f"mil-{precision}-seed{seed}"
        train = ["train", "--config", str(repo / "configs/train/synthetic_mil.yaml")]
        train += ["--store", str(store), "--dataset", "ucf", "--root", str(data)]
        _ok(run([*train, "--out", str(out), "--seed", str(seed), "--overwrite"]), "train")
        _ok(run(["evaluate", "--run", str(out), "--no-plots"]), "evaluate")
        metrics = json.loads((out / "eval" / "metrics.json").read_text())["metrics"]
        aucs[precision] = metrics["auc"]
    cos = store_cosines(work / "features-fp32", work / "features-bf16")
    print(
        f"bf16 vs fp32 features, {len(cos)} snippets of the synthetic demo set: cosine min "
        f"{cos.min():.6f}, mean {cos.mean():.6f}, share >= 0.9999: {(cos >= 0.9999).mean():.1%}"
    )
    print(
        f"MIL frame AUC (seed {seed}): fp32 {aucs['fp32']:.4f}, bf16 {aucs['bf16']:.4f}, "
        f"difference {aucs['bf16'] - aucs['fp32']:+.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4, help="16-frame clips compared (default: 4)")
    parser.add_argument(
        "--precisions", default="bf16", help="comma list of bf16,fp16 (default: bf16)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument(
        "--auc", type=Path, default=None, help="WORK folder: measure the effect on a detector"
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed of --auc (default: 0)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.auc is not None:
        auc_effect(args.auc, args.seed)
        return
    model, spec = build_backbone("i3d", device=args.device), get_backbone_spec("i3d")
    flops = count_flops(model, args.device)
    print(
        f"i3d: {flops / 1e9:.1f} GFLOP per 16x224x224 clip = {flops / 16 / 1e9:.2f} GFLOP per "
        "frame-crop"
    )
    with tempfile.TemporaryDirectory() as tmp:
        clips = real_clips(args.clips, Path(tmp))
    batch = torch.from_numpy(spec.prepare(clips)).to(args.device)
    ref, fp32_rate = timed(model, batch, args.device, None)
    print(
        f"fp32 on {args.device} ({args.threads} threads, {load_note()}): {fp32_rate:.1f} "
        "frame-crops/s"
    )
    for name in args.precisions.split(","):
        out, rate = timed(model, batch, args.device, name)
        cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
        rel = np.abs(out - ref).max() / np.abs(ref).max()
        print(
            f"{name} vs fp32 over {args.clips} clips: max |diff| {np.abs(out - ref).max():.4g} "
            f"(feature max {np.abs(ref).max():.3g}, relative {rel:.2%}), mean |diff| "
            f"{np.abs(out - ref).mean():.3g}, cosine min {cos.min():.6f} mean {cos.mean():.6f}; "
            f"{rate:.1f} frame-crops/s"
        )
        print(
            f"  goal (issue #19.2): {name} forward >= 1.6x fp32: {rate / fp32_rate:.2f}x "
            f"({'met' if rate / fp32_rate >= 1.6 else 'NOT met'}); per-snippet cosine >= 0.9999: "
            f"{cos.min():.6f} ({'met' if cos.min() >= 0.9999 else 'NOT met'})"
        )


def load_note() -> str:
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    return f"load {load:.1f} on {cores} cores" + (", UNDER LOAD" if load > cores * 0.75 else "")


def timed(model, batch, device: str, precision: str | None, repeats: int = 2):
    """Features of ``batch`` and frame-crops/s (after a warm-up call) with autocast ``precision``
    (None: fp32)."""
    from wsvad.extract.backbones.nets import layers

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision or "", torch.float32)
    # oneDNN's fp16 convolutions need avx512_fp16, so fp16 on CPU takes the plain conv3d path
    # (same arithmetic, slower): the numbers, not the speed, are what a GPU run would see
    fast = layers._MKLDNN
    layers._MKLDNN = fast and not (precision == "fp16" and device == "cpu")
    try:
        with (
            torch.inference_mode(),
            torch.autocast(device.split(":")[0], dtype=dtype, enabled=precision is not None),
        ):
            out = model(batch).float().cpu().numpy()  # warm-up: oneDNN primitives, allocator
            began = time.perf_counter()
            for _ in range(repeats):
                model(batch)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - began
    finally:
        layers._MKLDNN = fast
    return out, repeats * len(batch) * batch.shape[2] / seconds


if __name__ == "__main__":
    main()
