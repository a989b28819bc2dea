"""``random3d``: a tiny 3D CNN with fixed pseudo-random weights, for testing and timing the
pipeline.

Its features carry no meaning, but they are deterministic (the weights come from a seeded generator,
identical in every process), cheap (two strided 3D convolutions) and sensitive to every pixel,
frame order and crop, which is what pipeline tests need. Use ``i3d`` for real features.
"""

from __future__ import annotations

import numpy as np

from wsvad.extract.backbones.registry import BackboneSpec, register_backbone


def _prepare(clips: np.ndarray) -> np.ndarray:
    """``uint8 [B, L, S, S, 3] -> float32 [B, 3, L, S, S]`` in [-1, 1]."""
    return np.ascontiguousarray(clips.transpose(0, 4, 1, 2, 3), dtype=np.float32) / 127.5 - 1.0


def random3d_spec(dim: int = 64, seed: int = 0) -> BackboneSpec:
    return BackboneSpec(
        name="random3d",
        feature_shape=(int(dim),),
        snippet_len=16,
        crop_size=224,
        resize="short256",
        prepare=_prepare,
        weights_sha256=None,
        description=(
            f"deterministic random-weight tiny 3D CNN (seed {seed}) for tests and benchmarks; "
            "not meaningful"
        ),
        options={"dim": int(dim), "seed": int(seed)},
    )


@register_backbone("random3d", spec=random3d_spec)
def build_random3d(device: str = "cpu", dim: int = 64, seed: int = 0):
    """``[B, 3, L, S, S] -> [B, dim]``: conv(5x7x7, /2x4x4) -> ReLU -> conv(3x3x3, /2) -> ReLU
    -> mean."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(int(seed))
    model = nn.Sequential(
        nn.Conv3d(3, 16, kernel_size=(5, 7, 7), stride=(2, 4, 4), padding=(2, 3, 3)),
        nn.ReLU(),
        nn.Conv3d(16, int(dim), kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
    )
    with torch.no_grad():
        for param in model.parameters():
            fan_in = param[0].numel() if param.ndim > 1 else 16
            param.copy_(torch.randn(param.shape, generator=generator) / fan_in**0.5)
    return model.eval().to(device)
