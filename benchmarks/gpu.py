"""The CUDA path end to end, in one command, for the day a GPU is lent.

Checks and times, on a generated set (wsvad synth, tiny preset, 320x240):

1. 10-crop I3D extraction on the GPU in fp32 and bf16 (``wsvad extract --device cuda``), and the
   same videos on the CPU in fp32 as the reference;
2. CPU vs CUDA agreement per snippet: max |diff| and min cosine, fp32 and bf16 (the tolerances the
   ``gpu`` tests assert: fp32 cosine >= 0.99999, bf16 >= 0.999);
3. the bare forward in frame-crops/s at several batch sizes (fp32 and bf16 autocast, synchronised);
4. one training run (``wsvad train`` of MIL on the CUDA store, ``--device cuda``) and its frame AUC.

Prints one markdown table that docs/cluster.md can quote. Without CUDA it says so and exits 0: there
is nothing to check on this machine.

Run: ``python benchmarks/gpu.py [--device cuda] [--batches 10,20,40,80] [--work DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def no_cuda_reason(device: str) -> str | None:
    """Why ``device`` cannot be used here, or None when it can."""
    if not torch.cuda.is_available():
        return (
            f"no CUDA here (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}): "
            "nothing to check on this machine; run `python benchmarks/gpu.py` on a GPU machine"
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return f"{device}: this process sees {torch.cuda.device_count()} GPU(s)"
    return None


def _ok(code: int, what: str) -> None:
    if code != 0:
        raise SystemExit(f"{what} failed with exit code {code}")


def extract(data: Path, out: Path, device: str, precision: str) -> float:
    """10-crop I3D extraction of ``data``; returns the frame-crops per second of the whole run."""
    from wsvad.extract.config import ExtractConfig
    from wsvad.extract.run import run_extract

    cfg = ExtractConfig(
        dataset="ucf",
        root=data,
        out=out,
        crops=10,
        device=device,
        precision=precision,
        overwrite=True,
        cluster={"kind": "inline"},
    )
    summary = run_extract(cfg)
    if summary.failures:
        raise SystemExit(f"extraction on {device} ({precision}) failed: {summary.failures}")
    return summary.frame_crops / summary.seconds


def agreement(reference: Path, other: Path) -> tuple[float, float]:
    """(max |diff|, min cosine) over every snippet and crop of two stores of the same videos."""
    from wsvad.pipeline.store import FeatureStore

    left, right = FeatureStore.open(reference), FeatureStore.open(other)
    worst, cos_min = 0.0, 1.0
    for vid in left.video_ids():
        a, b = left.read(vid).astype(np.float64), right.read(vid).astype(np.float64)
        a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        worst = max(worst, float(np.abs(a - b).max()))
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        cos_min = min(cos_min, float(cos.min()))
    return worst, cos_min


def bare_rates(device: str, batches: list[int], repeats: int = 5) -> dict[tuple[str, int], float]:
    """Frame-crops/s of the bare I3D forward per (precision, batch of clips)."""
    from wsvad.extract.backbones import build_backbone

    model = build_backbone("i3d", device=device)
    rates = {}
    for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        for batch in batches:
            clips = torch.rand(batch, 3, 16, 224, 224, device=device) * 2 - 1
            with (
                torch.inference_mode(),
                torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None),
            ):
                model(clips)  # warm-up: kernel selection, allocator
                torch.cuda.synchronize(device)
                began = time.perf_counter()
                for _ in range(repeats):
                    model(clips)
                torch.cuda.synchronize(device)
            rates[precision, batch] = repeats * batch * 16 / (time.perf_counter() - began)
    return rates


def train_once(data: Path, store: Path, out: Path, device: str) -> tuple[float, float]:
    """One MIL training run on the GPU; returns (seconds, frame AUC)."""
    from wsvad.cli import run

    began = time.perf_counter()
    train = ["train", "--config", str(REPO / "configs/train/synthetic_mil.yaml")]
    train += ["--store", str(store), "--dataset", "ucf", "--root", str(data), "--out", str(out)]
    _ok(run([*train, "--seed", "0", "--overwrite", "--device", device]), "train")
    seconds = time.perf_counter() - began
    _ok(run(["evaluate", "--run", str(out), "--no-plots"]), "evaluate")
    metrics = json.loads((out / "eval" / "metrics.json").read_text())["metrics"]
    return seconds, float(metrics["auc"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the GPU to check (default: cuda)")
    parser.add_argument("--batches", default="10,20,40,80", help="clips per forward pass")
    parser.add_argument("--work", type=Path, default=None, help="folder kept after the run")
    args = parser.parse_args()
    reason = no_cuda_reason(args.device)
    if reason:
        print(reason)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        table = check(work, args.device, [int(b) for b in args.batches.split(",")])
    print(table)
    return 0


def check(work: Path, device: str, batches: list[int]) -> str:
    """Run every step and return the markdown table."""
    from wsvad.data.synth import generate_synthetic_dataset

    data = work / "data"
    generate_synthetic_dataset(data, seed=0, preset="tiny", size="320x240")
    rows = [f"| GPU | {torch.cuda.get_device_name(device)} (torch {torch.__version__}) |"]
    cpu_rate = extract(data, work / "cpu-fp32", "cpu", "fp32")
    rows.append(f"| 10-crop extraction, cpu fp32 (reference) | {cpu_rate:.1f} frame-crops/s |")
    for precision in ("fp32", "bf16"):
        store = work / f"cuda-{precision}"
        rate = extract(data, store, device, precision)
        worst, cos_min = agreement(work / "cpu-fp32", store)
        rows.append(f"| 10-crop extraction, {device} {precision} | {rate:.1f} frame-crops/s |")
        rows.append(
            f"| CPU fp32 vs {device} {precision} features | max diff {worst:.3g}, "
            f"min cosine {cos_min:.6f} |"
        )
    for (precision, batch), rate in bare_rates(device, batches).items():
        rows.append(f"| bare I3D forward, {precision}, batch {batch} | {rate:.1f} frame-crops/s |")
    seconds, auc = train_once(data, work / "cuda-fp32", work / "run-mil", device)
    rows.append(f"| MIL training (300 it) on {device} | {seconds:.1f} s, frame AUC {auc:.4f} |")
    return "\n".join(["| check | result |", "|---|---|", *rows])


if __name__ == "__main__":
    sys.exit(main())
