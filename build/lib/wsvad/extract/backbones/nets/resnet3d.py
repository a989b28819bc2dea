"""Inflated 3D ResNet-50 ("I3D-ResNet50", the baseline of Wang et al., Non-local Neural Networks,
CVPR 2018) with BatchNorm folded into the convolutions. Module names follow the commonly shared
PyTorch conversion of the Kinetics-400 model (``conv1``, ``layer1.0.conv1``, ...), minus the BN
layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsvad.extract.backbones.nets.layers import Unit3D

# (planes, blocks, spatial stride, blocks whose conv1 is inflated to 3x1x1): the non-local paper
STAGES = [
    (64, 3, 1, (1, 1, 1)),
    (128, 4, 2, (1, 0, 1, 0)),
    (256, 6, 2, (1, 0, 1, 0, 1, 0)),
    (512, 3, 2, (0, 1, 0)),
]


class Bottleneck(nn.Module):
    def __init__(self, in_channels: int, planes: int, stride: int, temporal: int) -> None:
        super().__init__()
        self.conv1 = Unit3D(in_channels, planes, (1 + 2 * temporal, 1, 1), padding=(temporal, 0, 0))
        self.conv2 = Unit3D(planes, planes, (1, 3, 3), (1, stride, stride), padding=(0, 1, 1))
        self.conv3 = Unit3D(planes, planes * 4, relu=False, padding=(0, 0, 0))
        self.downsample = None
        if stride != 1 or in_channels != planes * 4:
            self.downsample = Unit3D(
                in_channels,
                planes * 4,
                (1, 1, 1),
                (1, stride, stride),
                relu=False,
                padding=(0, 0, 0),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        return F.relu(out.add_(residual), inplace=True)


class I3DResNet50(nn.Module):
    """``[B, 3, L, S, S]`` (RGB in [-1, 1]) -> ``[B, 2048]``, layer4 mean over T, H, W."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = Unit3D(3, 64, (5, 7, 7), (2, 2, 2), padding=(2, 3, 3))
        channels = 64
        for index, (planes, blocks, stride, temporal) in enumerate(STAGES, start=1):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(channels, planes, stride if b == 0 else 1, temporal[b]))
                channels = planes * 4
            self.add_module(f"layer{index}", nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last throughout, for the same reasons as in inception_i3d.InceptionI3d.
        x = self.conv1(x.contiguous(memory_format=torch.channels_last_3d))
        x = F.max_pool3d(x, (2, 3, 3), (2, 2, 2))
        x = self.layer1(x)
        x = F.max_pool3d(x, (2, 1, 1), (2, 1, 1))
        x = self.layer4(self.layer3(self.layer2(x)))
        return x.mean((2, 3, 4))  # (B, 2048, T', 7, 7) -> (B, 2048)
