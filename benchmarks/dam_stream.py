"""DAM online scoring speed: clips per second of ``DamStream`` (detector only, no I3D).

A DAM detector (full size by default: ``(7, 1024)`` clips, n_h = 1024, MLP 512 -> 32 -> 1; Majhi
et al., AVSS 2021) in eval mode scores random clips one at a time, each against the clip before it,
as ``wsvad.detectors.dam.DamStream`` does on a live source. Printed: clips/s, and clips/s x 64
frames per snippet to set next to the paper's 282 FPS (Table 3; the paper's figure includes the
backbone, this one does not). Uses ``--threads`` CPU threads; on a loaded machine say so with
``--label "under load"``.

Run: ``python benchmarks/dam_stream.py [--clips 200] [--threads 2] [--label "under load"]``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from wsvad.detectors.dam import Dam, DamParams, DamStream

FRAMES_PER_SNIPPET = 64  # I3D snippet length in the paper (sec. 3.2)
WARM_UP = 5  # first calls allocate the LSTM workspaces; not part of the steady state


def clips_per_second(
    n_clips: int = 200,
    params: DamParams | None = None,
    feature_shape: tuple[int, int] = (7, 1024),
    seed: int = 0,
) -> float:
    """Clips per second of ``DamStream`` on ``n_clips`` seeded random clips, after a warm-up."""
    torch.manual_seed(seed)
    detector = Dam(feature_shape, params or DamParams()).eval()
    clips = torch.randn(n_clips + WARM_UP, *feature_shape)
    stream = DamStream(detector)
    for clip in clips[:WARM_UP]:
        stream.push(clip)
    start = time.perf_counter()
    for clip in clips[WARM_UP:]:
        stream.push(clip)
    return n_clips / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200, help="clips timed after the warm-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", default="", help='e.g. "under load": printed with the figures')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rate = clips_per_second(args.clips)
    label = f", {args.label}" if args.label else ""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"dam stream, full-size detector (7, 1024), {args.clips} clips, {args.threads} CPU threads "
        f"(load average {load}{label}): {rate:.1f} clips/s = {rate * FRAMES_PER_SNIPPET:.0f} "
        "frames/s at 64 frames per clip (paper: 282 FPS with the backbone)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
