"""CPU and CUDA extraction agree (``make test-gpu``; without a GPU these skip, saying why).

The same tiny videos go through the same weights on both devices. fp32 on CUDA runs IEEE fp32
convolutions (TF32 is turned off, see ``accel.prepare_model``), so it matches CPU fp32 up to the
order of floating-point sums; bf16 and fp16 autocast on CUDA stay as close to fp32 as bf16 on CPU
does (tests/extract/test_extract_accel.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsvad.extract.config import ExtractConfig
from wsvad.extract.run import run_extract
from wsvad.pipeline.store import FeatureStore

pytestmark = pytest.mark.gpu

SMALL = {
    "backbone": "random3d",
    "resize": "short64",
    "crop_size": 48,
    "crops": 5,
    "cluster": {"kind": "inline", "threads_per_worker": 1},
}
I3D = {"backbone": "i3d", "crops": 1, "cluster": {"kind": "inline"}}
FP32_TOLERANCE = 1e-4  # of the largest |feature|: summation order, not precision


@pytest.fixture
def dataset(tmp_path, make_video):
    make_video("videos/a.mp4", n_frames=40, size=(64, 48), seed=1)
    make_video("videos/b.avi", n_frames=37, size=(66, 50), codec="mpeg4", seed=2)
    return tmp_path / "videos"


def extract(root: Path, out: Path, **settings) -> tuple[dict[str, np.ndarray], dict]:
    summary = run_extract(
        ExtractConfig.model_validate({"dataset": "folder", "root": root, "out": out, **settings})
    )
    assert summary.failures == {} and summary.extracted == 2
    store = FeatureStore.open(out)
    return {vid: store.read(vid) for vid in store.video_ids()}, store.attrs


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.mark.parametrize("settings", [SMALL, I3D], ids=["random3d", "i3d"])
def test_fp32_cuda_features_match_cpu(dataset, tmp_path, settings):
    cpu, cpu_attrs = extract(dataset, tmp_path / "cpu", **settings)
    cuda, cuda_attrs = extract(dataset, tmp_path / "cuda", device="cuda", **settings)
    # the device is not a feature setting: a store begun on CPU may be finished on a GPU
    assert cuda_attrs["config_hash"] == cpu_attrs["config_hash"]
    assert sorted(cuda) == sorted(cpu) == ["a", "b"]
    for vid in cpu:
        assert cuda[vid].shape == cpu[vid].shape and cuda[vid].dtype == np.float32
        assert np.abs(cuda[vid] - cpu[vid]).max() <= FP32_TOLERANCE * np.abs(cpu[vid]).max()


def test_bf16_and_fp16_on_cuda_stay_close_to_fp32(dataset, tmp_path):
    fp32, _ = extract(dataset, tmp_path / "fp32", **SMALL)
    cpu_bf16, _ = extract(dataset, tmp_path / "cpu_bf16", precision="bf16", **SMALL)
    bf16, _ = extract(dataset, tmp_path / "bf16", device="cuda", precision="bf16", **SMALL)
    fp16, _ = extract(dataset, tmp_path / "fp16", device="cuda", precision="fp16", **SMALL)
    for vid, ref in fp32.items():
        scale = np.abs(ref).max()
        # bf16 keeps 8 mantissa bits: visible, small; fp16 keeps 11: closer still
        assert 0 < np.abs(bf16[vid] - ref).max() < 0.02 * scale
        assert cosine(bf16[vid], ref).min() > 0.999
        assert np.abs(fp16[vid] - ref).max() < 0.005 * scale
        assert cosine(fp16[vid], ref).min() > 0.9999
        assert cosine(bf16[vid], cpu_bf16[vid]).min() > 0.999  # both reduced, the same way


def test_a_local_cluster_with_one_worker_per_gpu_extracts_on_cuda(dataset, tmp_path):
    cpu, _ = extract(dataset, tmp_path / "cpu", **SMALL)
    pinned = {**SMALL, "cluster": {"kind": "local", "gpus_per_node": 1, "threads_per_worker": 1}}
    cuda, _ = extract(dataset, tmp_path / "cuda", device="cuda", **pinned)
    for vid in cpu:
        assert np.abs(cuda[vid] - cpu[vid]).max() <= FP32_TOLERANCE * np.abs(cpu[vid]).max()
