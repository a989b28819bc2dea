"""C3D (Tran et al., ICCV 2015) up to fc6, in the module layout of the widely shared PyTorch
conversion of the Sports-1M Caffe model (keys ``conv1`` ... ``conv5b``, ``fc6``; see ../c3d.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wsvad.extract.backbones.nets.layers import conv3d

# (name, in_channels, out_channels, pool after it: (kernel = stride, padding) or None)
CONVS = [
    ("conv1", 3, 64, ((1, 2, 2), (0, 0, 0))),
    ("conv2", 64, 128, ((2, 2, 2), (0, 0, 0))),
    ("conv3a", 128, 256, None),
    ("conv3b", 256, 256, ((2, 2, 2), (0, 0, 0))),
    ("conv4a", 256, 512, None),
    ("conv4b", 512, 512, ((2, 2, 2), (0, 0, 0))),
    ("conv5a", 512, 512, None),
    ("conv5b", 512, 512, ((2, 2, 2), (0, 1, 1))),  # 7x7 -> 4x4, so fc6 sees 512 * 1 * 4 * 4 = 8192
]
FC6_IN, FC6_OUT = 8192, 4096


class C3D(nn.Module):
    """``[B, 3, 16, 112, 112]`` (BGR, mean-subtracted, 0-255 scale) -> ``[B, 4096]`` fc6."""

    def __init__(self, relu: bool = True) -> None:
        super().__init__()
        self.relu = relu
        for name, cin, cout, _ in CONVS:
            self.add_module(name, nn.Conv3d(cin, cout, 3, padding=1))
        self.fc6 = nn.Linear(FC6_IN, FC6_OUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2:] != (16, 112, 112):
            raise ValueError(f"c3d expects [B, 3, 16, 112, 112], got {list(x.shape)}")
        # Channels-last throughout, for the same reasons as in inception_i3d.InceptionI3d.
        x = x.contiguous(memory_format=torch.channels_last_3d)
        for name, _, _, pool in CONVS:
            x = F.relu(conv3d(x, getattr(self, name), (1, 1, 1)), inplace=True)
            if pool is not None:
                x = F.max_pool3d(x, pool[0], pool[0], padding=pool[1])
        # The flatten order (C, T, H, W) is the one fc6's weights were trained with.
        x = self.fc6(x.flatten(1))  # (B, 512, 1, 4, 4) -> (B, 8192) -> (B, 4096)
        return F.relu(x) if self.relu else x
