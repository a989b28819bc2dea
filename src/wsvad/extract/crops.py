"""Frame resizing and the 1/5/10-crop scheme (numpy + torch; no torchvision, no PIL).

Crop order (stored as the store attr ``crop_order``), the order of torchvision's ``ten_crop`` that
the RTFM / I3D 10-crop feature releases follow:

    0 TL, 1 TR, 2 BL, 3 BR, 4 C,  5-9: the same five positions cropped from the horizontally
    flipped frame (so crop 5 "flip-TL" shows the mirrored top-RIGHT corner of the original).

1 crop = [C]; 5 crops = [TL, TR, BL, BR, C]; 10 crops = all ten.
"""

from __future__ import annotations

import re

import numpy as np

CROP_NAMES = ("TL", "TR", "BL", "BR", "C")
_SHORT = re.compile(r"short(\d+)")
_FIXED = re.compile(r"(\d+)x(\d+)")


def crop_order(n_crops: int) -> list[str]:
    """Names of the crops in storage order, e.g. ``["C"]`` or ``["TL", ..., "flip-C"]``."""
    if n_crops == 1:
        return ["C"]
    if n_crops == 5:
        return list(CROP_NAMES)
    if n_crops == 10:
        return list(CROP_NAMES) + [f"flip-{name}" for name in CROP_NAMES]
    raise ValueError(f"crops must be 1, 5 or 10, got {n_crops}")


def check_resize(resize: str) -> str:
    """Validate a resize spec: ``short<N>`` (short side to N, aspect kept) or ``<W>x<H>``
    (fixed)."""
    if not (_SHORT.fullmatch(resize) or _FIXED.fullmatch(resize)):
        raise ValueError(
            f"resize {resize!r}: expected 'short<N>' (e.g. short256) or '<W>x<H>' (e.g. 340x256)"
        )
    if any(int(size) == 0 for size in re.findall(r"\d+", resize)):
        raise ValueError(f"resize {resize!r}: sizes must be at least 1 pixel")
    return resize


def resized_shape(height: int, width: int, resize: str) -> tuple[int, int]:
    """Output ``(H, W)`` of ``resize`` for a ``height x width`` frame.

    ``short<N>`` follows torchvision ``Resize(N)``: the long side is ``int(N * long / short)``.

    >>> resized_shape(240, 320, "short256")
    (256, 341)
    >>> resized_shape(480, 270, "340x256")
    (256, 340)
    """
    fixed = _FIXED.fullmatch(resize)
    if fixed:
        return int(fixed.group(2)), int(fixed.group(1))
    short = _SHORT.fullmatch(check_resize(resize))
    target = int(short.group(1))
    if height <= width:
        return target, int(target * width / height)
    return int(target * height / width), target


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear, antialiased resize of uint8 frames ``[N, H, W, 3] -> [N, h, w, 3]``.

    Antialiasing matters when shrinking HD video to 256 lines (it matches PIL's filter). torch has a
    vectorised uint8 channels-last kernel for exactly this case: measured 20-27x faster than
    resizing in float32 (0.1 s vs 2.2 s for 256 frames 320x240 -> 341x256 on 2 cores), and within
    1 grey level of it.
    """
    import torch

    if frames.shape[1:3] == tuple(size):
        return frames
    # (N, 3, H, W), channels-last memory
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(
        x, size=size, mode="bilinear", align_corners=False, antialias=True
    )
    return x.permute(0, 2, 3, 1).contiguous().numpy()  # (N, h, w, 3) uint8


def crop_positions(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """``(top, left)`` of TL, TR, BL, BR, C; the centre rounds like torchvision's
    ``center_crop``."""
    if height < size or width < size:
        raise ValueError(f"frame {width}x{height} is smaller than the {size}x{size} crop")
    bottom, right = height - size, width - size
    centre = (int(round(bottom / 2.0)), int(round(right / 2.0)))
    return [(0, 0), (0, right), (bottom, 0), (bottom, right), centre]


def crop_views(frames: np.ndarray, size: int, n_crops: int) -> list[np.ndarray]:
    """The crops of resized frames ``[..., H, W, 3]`` as views (no pixel is copied), in
    :func:`crop_order` order; each is ``[..., S, S, 3]``."""
    height, width = frames.shape[-3:-1]
    positions = crop_positions(height, width, size)
    if n_crops == 1:
        positions = positions[4:]
    elif n_crops not in (5, 10):
        raise ValueError(f"crops must be 1, 5 or 10, got {n_crops}")
    views = [frames[..., top : top + size, left : left + size, :] for top, left in positions]
    if n_crops == 10:
        flipped = frames[..., :, ::-1, :]
        views += [flipped[..., top : top + size, left : left + size, :] for top, left in positions]
    return views


def make_crops(frames: np.ndarray, size: int, n_crops: int) -> np.ndarray:
    """Crop resized frames ``[N, H, W, 3] -> [N, C, S, S, 3]`` in :func:`crop_order` order."""
    return np.ascontiguousarray(np.stack(crop_views(frames, size, n_crops), axis=1))


def crop_batch(snippets: list[np.ndarray], size: int, n_crops: int) -> np.ndarray:
    """Snippets of resized frames ``[L, H, W, 3]`` -> the model's clips ``[b * C, L, S, S, 3]``
    (snippet-major, crops in :func:`crop_order` order).

    Each crop is copied once, straight from the frames into the batch: the frames are resized once
    and the ten crops are views of them until here.
    """
    length = snippets[0].shape[0]
    batch = np.empty((len(snippets) * n_crops, length, size, size, 3), dtype=np.uint8)
    for j, snippet in enumerate(snippets):
        for k, view in enumerate(crop_views(snippet, size, n_crops)):
            batch[j * n_crops + k] = view
    return batch


def resize_and_crop(frames: np.ndarray, resize: str, size: int, n_crops: int) -> np.ndarray:
    """Decoded RGB frames ``[N, H, W, 3]`` -> crops ``[N, C, S, S, 3]`` (uint8)."""
    height, width = frames.shape[1:3]
    return make_crops(resize_frames(frames, resized_shape(height, width, resize)), size, n_crops)
