"""Inception-I3D network (Carreira and Zisserman, CVPR 2017) with TF-'SAME' padding and BatchNorm
folded into the convolutions; the layout follows DeepMind's kinetics-i3d (endpoints Conv3d_1a_7x7
... Mixed_5c, Logits)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsvad.errors import WsvadError
from wsvad.extract.backbones.nets.layers import Unit3D, max_pool_same

N_CLASSES = 400

# (name, in_channels, (b0, b1a, b1b, b2a, b2b, b3)) of every Inception block, in order.
MIXED_BLOCKS = [
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
]


class InceptionBlock(nn.Module):
    """Four branches: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | max-pool 3x3x3 -> 1x1, concatenated."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.split = (out[0], out[1], out[3])
        # The three 1x1 convs that read the block input run as one wider conv (weights concatenated
        # at conversion): the input is read once and the GEMM is wide enough to run efficiently.
        self.heads = Unit3D(in_channels, sum(self.split))
        self.branch_1b = Unit3D(out[1], out[2], (3, 3, 3))
        self.branch_2b = Unit3D(out[3], out[4], (3, 3, 3))
        self.branch_3b = Unit3D(in_channels, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0, b1, b2 = torch.split(self.heads(x), self.split, dim=1)
        # The split leaves strided views; the 3x3x3 convs want dense channels-last input.
        b1 = self.branch_1b(b1.contiguous(memory_format=torch.channels_last_3d))
        b2 = self.branch_2b(b2.contiguous(memory_format=torch.channels_last_3d))
        b3 = self.branch_3b(max_pool_same(x, (3, 3, 3), (1, 1, 1)))
        # Concatenating along the last axis of the NDHWC views yields a dense channels-last result.
        out = torch.cat([b.permute(0, 2, 3, 4, 1) for b in (b0, b1, b2, b3)], dim=-1)
        return out.permute(0, 4, 1, 2, 3)  # (B, T, H, W, C) memory, (B, C, T, H, W) view


class InceptionI3d(nn.Module):
    """``[B, 3, L, S, S]`` in [-1, 1] -> ``[B, 1024]`` (default), ``[B, L/8 - 1, 1024]`` (keep_time)
    or ``[B, 400]`` Kinetics logits (logits)."""

    def __init__(self, keep_time: bool = False, logits: bool = False) -> None:
        super().__init__()
        if keep_time and logits:
            raise WsvadError("i3d: options keep_time and logits exclude each other")
        self.keep_time, self.logits = keep_time, logits
        self.conv3d_1a = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.conv3d_2b = Unit3D(64, 64)
        self.conv3d_2c = Unit3D(64, 192, (3, 3, 3))
        self.mixed = nn.ModuleDict(
            {name.lower(): InceptionBlock(cin, out) for name, cin, out in MIXED_BLOCKS}
        )
        self.classifier = nn.Conv3d(1024, N_CLASSES, 1) if logits else None

    def mixed_5c(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, L, S, S] -> [B, 1024, L/8, S/32, S/32]`` (the Mixed_5c endpoint)."""
        # Channels-last (NDHWC memory) throughout: oneDNN convs and max pooling are several times
        # faster on it than on NCDHW on CPU, and 1x1x1 convs become plain GEMMs (see layers.Unit3D).
        x = self.conv3d_1a(x.contiguous(memory_format=torch.channels_last_3d))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.conv3d_2c(self.conv3d_2b(x))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))
        for name, block in self.mixed.items():
            if name == "mixed_4b":
                x = max_pool_same(x, (3, 3, 3), (2, 2, 2))
            elif name == "mixed_5b":
                x = max_pool_same(x, (2, 2, 2), (2, 2, 2))
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] < 9:  # Mixed_5c would have a single time step, too few for the 2-frame pool
            raise ValueError(f"i3d needs at least 9 frames per snippet, got {x.shape[2]}")
        x = self.mixed_5c(x)
        # The Logits endpoint's pool: 2 frames x the whole 7x7 map (at 224 px), stride 1, VALID.
        # (B, 1024, L/8, h, w) -> (B, 1024, L/8 - 1, 1, 1)
        x = F.avg_pool3d(x, (2, x.shape[3], x.shape[4]), stride=1)
        if self.classifier is not None:
            # (B, 400): the 1x1 conv, then the class scores averaged over time, as in the TF model
            return self.classifier(x).mean((2, 3, 4))
        x = x.flatten(2)  # (B, 1024, L/8 - 1)
        return x.transpose(1, 2).contiguous() if self.keep_time else x.mean(2)
