"""Bare forward rate of each backbone on CPU, in frame-crops/s (16-frame snippets x crops / second).

    .venv/bin/python tools/backbone_speed.py --threads 2 --batches 1 10

i3d uses its real weights; c3d and i3d_r50 use random weights of the right layout (their real
weights are not redistributable), which run at the same speed. Besides wall-clock rates the tool
prints a CPU-time rate (frame-crops per CPU-second): on a shared machine the wall-clock figure
depends on the other processes, the CPU-time one much less.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[1, 10], help="crops per forward (default: 1 10)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed forwards per case, best kept (default: 3)"
    )
    parser.add_argument(
        "--backbones", nargs="+", default=["i3d", "c3d", "i3d_r50"], help="default: all three"
    )
    args = parser.parse_args()

    import torch

    from wsvad.extract.backbones import build_backbone, get_backbone_spec
    from wsvad.extract.backbones.c3d import expected_keys as c3d_keys
    from wsvad.extract.backbones.i3d_r50 import expected_keys as r50_keys
    from wsvad.extract.backbones.weights import write_random_weights

    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="wsvad-speed-")
    options = {
        "i3d": {},
        "c3d": {
            "weights": lambda: write_random_weights(
                os.path.join(tmp, "c3d.safetensors"), c3d_keys()
            )
        },
        "i3d_r50": {
            "weights": lambda: write_random_weights(
                os.path.join(tmp, "r50.safetensors"), r50_keys()
            )
        },
    }
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {args.threads} threads, load average {load:.1f}")  # noqa: T201
    for name in args.backbones:
        opts = {k: v() for k, v in options[name].items()}
        model, spec = build_backbone(name, **opts), get_backbone_spec(name, **opts)
        for batch in args.batches:
            clips = torch.randint(
                0, 256, (batch, spec.snippet_len, spec.crop_size, spec.crop_size, 3)
            )
            x = torch.from_numpy(spec.prepare(clips.to(torch.uint8).numpy()))
            wall = cpu = float("inf")
            with torch.inference_mode():
                model(x)  # warm-up: oneDNN builds its kernels on the first call
                for _ in range(args.repeats):
                    t0, c0 = time.perf_counter(), time.process_time()
                    model(x)
                    wall = min(wall, time.perf_counter() - t0)
                    cpu = min(cpu, time.process_time() - c0)
            frames = batch * spec.snippet_len
            print(  # noqa: T201
                f"{name:8s} batch {batch:3d}: {frames / wall:6.1f} frame-crops/s wall, "
                f"{frames / cpu:6.1f} per CPU-second ({wall:.2f} s per forward)"
            )


if __name__ == "__main__":
    main()
