"""Native bf16 detection, the precision line of `wsvad extract`, and what the store records."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from wsvad.extract import precision
from wsvad.extract.precision import cpu_flags, native_bf16, precision_line

REPO = Path(__file__).resolve().parents[2]


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n\n"
        "processor\t: 1\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n"
    )
    flags = cpu_flags(cpuinfo)
    assert {"avx512_bf16", "avx512f", "amx_tile"} <= flags and "amx_bf16" not in flags
    assert native_bf16(flags) == "AVX512-BF16"
    assert native_bf16(flags | {"amx_bf16"}) == "AMX-BF16"  # the better unit wins
    assert native_bf16({"avx2", "avx512f"}) is None
    assert cpu_flags(tmp_path / "missing") == set()


def test_the_precision_line_says_what_runs(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: "AVX512-BF16")
    assert precision_line("cpu", "bf16") == ("precision bf16 on cpu (native bf16: AVX512-BF16)")
    assert precision_line("cpu", "fp32") == (
        "precision fp32 on cpu; this CPU has native bf16 (AVX512-BF16): --precision bf16 is "
        "faster, see docs/performance.md"
    )
    monkeypatch.setattr(precision, "native_bf16", lambda: None)
    assert precision_line("cpu", "fp32") == "precision fp32 on cpu"
    assert "EMULATED: this CPU has no AVX512-BF16/AMX" in precision_line("cpu", "bf16")


def test_the_store_records_the_precision(tmp_path, make_video, monkeypatch, capsys):
    from wsvad.cli import run
    from wsvad.pipeline.store import FeatureStore

    monkeypatch.setattr(precision, "native_bf16", lambda: "AVX512-BF16")
    make_video("v/a.mp4", n_frames=16, size=(64, 48))
    args = ["extract", "--dataset", "folder", "--root", str(tmp_path / "v")]
    args += ["--out", str(tmp_path / "s"), "--backbone", "random3d", "--resize", "short64"]
    args += ["--crops", "1", "--workers", "0", "--set", "crop_size=48", "--precision", "bf16"]
    assert run(args) == 0
    assert "precision bf16 on cpu (native bf16: AVX512-BF16)" in capsys.readouterr().out
    attrs = FeatureStore.open(tmp_path / "s").attrs
    assert attrs["precision"] == "bf16"
    assert attrs["compute"] == {
        "device": "cpu",
        "precision": "bf16",
        "cpu_native_bf16": "AVX512-BF16",
    }


def test_the_gpu_benchmark_exits_cleanly_without_cuda(monkeypatch, capsys):
    import torch

    spec = importlib.util.spec_from_file_location("gpu_bench", REPO / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("sys.argv", ["gpu.py"])
    assert module.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("no CUDA here (torch ") and "nothing to check on this machine" in out
    with pytest.raises(SystemExit, match="extract failed with exit code 1"):
        module._ok(1, "extract")
