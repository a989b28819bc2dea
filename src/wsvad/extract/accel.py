"""Accelerator settings of the extraction model: device, mixed precision, torch.compile, pinned
copies.

Everything here is a no-op on the default CPU/fp32 path, so CPU features do not change. The
numerical effect of ``bf16``/``fp16`` on I3D features is measured in docs/cluster.md.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from wsvad.errors import WsvadError
from wsvad.extract.config import ExtractConfig

_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def device_type(device: str) -> str:
    """``"cuda:1"`` -> ``"cuda"`` (what torch.autocast wants).

    >>> device_type("cuda:1"), device_type("cpu")
    ('cuda', 'cpu')
    """
    return device.split(":", 1)[0]


def check_device(device: str) -> None:
    """Refuse a CUDA device this process cannot use, naming what is there instead."""
    if device_type(device) != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        raise WsvadError(
            f"--device {device}: CUDA is not available here (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'}); use --device cpu"
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise WsvadError(
            f"--device {device}: this process sees {torch.cuda.device_count()} GPU(s) "
            "(CUDA_VISIBLE_DEVICES may hide the others)"
        )


def prepare_model(model: Any, cfg: ExtractConfig) -> Any:
    """Apply the accelerator settings to a freshly built backbone (eval mode, on ``cfg.device``)."""
    import torch

    if device_type(cfg.device) == "cuda":
        # fixed input shapes (one batch size plus the last, smaller batch): autotuning pays off
        torch.backends.cudnn.benchmark = True
        # cuDNN runs fp32 convolutions in TF32 (10 mantissa bits) by default on Ampere and
        # later: fp32 must mean fp32, so CUDA features agree with CPU ones
        # (tests/extract/test_extract_cuda.py); bf16/fp16 are the fast choices
        torch.backends.cudnn.allow_tf32 = cfg.precision != "fp32"
    if cfg.compile:
        model = torch.compile(model, dynamic=False)
    return model


def autocast(cfg: ExtractConfig) -> contextlib.AbstractContextManager:
    """Mixed-precision context for the forward pass; ``fp32`` is a no-op."""
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(
        device_type=device_type(cfg.device), dtype=getattr(torch, _DTYPES[cfg.precision])
    )


def host_batch(batch: np.ndarray, device: str) -> Any:
    """A prepared batch ``[b, 3, L, S, S]`` as a host tensor; page-locked when it goes to a GPU, so
    the copy can be asynchronous (called in the prefetch thread, off the model's critical path)."""
    import torch

    tensor = torch.from_numpy(batch)
    return tensor.pin_memory() if device_type(device) == "cuda" else tensor


def to_device(tensor: Any, device: str) -> Any:
    """Move a :func:`host_batch` tensor to ``device`` (non-blocking from pinned memory)."""
    if device_type(device) == "cpu":
        return tensor
    return tensor.to(device, non_blocking=True)
