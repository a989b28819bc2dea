"""Which precision a model runs in (extraction, training), and whether this CPU computes bf16
natively.

bf16 autocast on a CPU with AVX512-BF16 or AMX runs oneDNN's native bf16 kernels (measured 1.4-1.5x
the fp32 forward of I3D, docs/performance.md); without them oneDNN emulates bf16 and is slower than
fp32. The run says which one it is, and the store records it (store attrs ``precision`` and
``compute``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsvad.extract.accel import device_type
from wsvad.extract.config import ExtractConfig

# /proc/cpuinfo flag -> name shown to users, best first
_BF16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not exist."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(flags: set[str] | None = None) -> str | None:
    """``"AMX-BF16"`` or ``"AVX512-BF16"`` when this CPU has bf16 instructions, else None.

    Without /proc/cpuinfo, torch's own dispatch level decides: ``AVX512_BF16``/``AMX`` there
    (newer torch builds) mean the same.

    >>> native_bf16({"avx512f", "avx512_bf16"}), native_bf16({"avx2"})
    ('AVX512-BF16', None)
    """
    flags = cpu_flags() if flags is None else flags
    for flag, name in _BF16_FLAGS.items():
        if flag in flags:
            return name
    if not flags:
        import torch

        capability = torch.backends.cpu.get_cpu_capability().upper()
        if "AMX" in capability:
            return "AMX-BF16"
        if "BF16" in capability:
            return "AVX512-BF16"
    return None


def compute_attrs(cfg: ExtractConfig) -> dict[str, Any]:
    """What computed the features (store attr ``compute``): device, precision, native bf16."""
    on_cpu = device_type(cfg.device) == "cpu"
    return {
        "device": cfg.device,
        "precision": cfg.precision,
        "cpu_native_bf16": native_bf16() if on_cpu else None,
    }


def precision_line(device: str, precision: str) -> str:
    """One line saying which precision the model runs in on ``device``: printed by ``wsvad extract``
    and ``wsvad train`` (both take ``--precision``; both gain from native bf16)."""
    if device_type(device) != "cpu":
        return f"precision {precision} on {device}"
    native = native_bf16()
    if precision == "bf16":
        if native:
            return f"precision bf16 on cpu (native bf16: {native})"
        return (
            "precision bf16 on cpu, EMULATED: this CPU has no AVX512-BF16/AMX, so bf16 is slower "
            "than fp32 here; use --precision fp32"
        )
    hint = (
        f"; this CPU has native bf16 ({native}): --precision bf16 is faster, see "
        "docs/performance.md"
        if native
        else ""
    )
    return f"precision {precision} on cpu{hint}"
