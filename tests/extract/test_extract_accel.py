"""Accelerator options: mixed precision, torch.compile, pinned copies, one worker per GPU
(CPU-visible logic)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from wsvad.errors import WsvadError
from wsvad.extract.accel import autocast, check_device, host_batch, to_device
from wsvad.extract.config import ExtractConfig
from wsvad.extract.run import run_extract, store_attrs
from wsvad.pipeline.store import FeatureStore

SMALL = {
    "backbone": "random3d",
    "resize": "short64",
    "crop_size": 48,
    "crops": 5,
    "cluster": {"kind": "inline", "threads_per_worker": 1},
}


def cfg_for(root: Path, out: Path, **overrides) -> ExtractConfig:
    from wsvad.extract.config import resolve_config

    return resolve_config(
        ExtractConfig.model_validate(
            {"dataset": "folder", "root": root, "out": out, **SMALL, **overrides}
        )
    )


@pytest.fixture
def dataset(tmp_path, make_video):
    make_video("videos/a.mp4", n_frames=40, size=(64, 48), seed=1)
    return tmp_path / "videos"


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_bf16_changes_features_slightly_and_gets_its_own_config_hash(dataset, tmp_path):
    fp32, bf16 = (
        cfg_for(dataset, tmp_path / "fp32"),
        cfg_for(dataset, tmp_path / "bf16", precision="bf16"),
    )
    assert (
        "precision" not in fp32.feature_config()
    )  # fp32 stores keep the hash they had before the option
    assert store_attrs(fp32)["config_hash"] != store_attrs(bf16)["config_hash"]
    run_extract(fp32)
    run_extract(bf16)
    a, b = (
        FeatureStore.open(tmp_path / "fp32").read("a"),
        FeatureStore.open(tmp_path / "bf16").read("a"),
    )
    assert a.shape == b.shape == (3, 5, 64)
    diff = np.abs(a - b).max()
    assert 0 < diff < 0.02 * np.abs(a).max()  # bf16 keeps 8 mantissa bits: visible, small
    assert cosine(a, b).min() > 0.999
    with pytest.raises(WsvadError, match="store was made with a different config .*precision"):
        run_extract(cfg_for(dataset, tmp_path / "fp32", precision="bf16"))
    with pytest.raises(ValueError, match="precision fp16 needs a CUDA device .* on CPU use bf16"):
        ExtractConfig(precision="fp16")


def test_fp32_and_cpu_paths_are_no_ops():
    cfg = ExtractConfig()
    with autocast(cfg):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(ExtractConfig(precision="bf16")):
        assert (
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        )
    batch = np.arange(6, dtype=np.float32).reshape(1, 6)
    tensor = host_batch(batch, "cpu")
    assert not tensor.is_pinned() and to_device(tensor, "cpu") is tensor
    assert np.shares_memory(tensor.numpy(), batch)  # no copy on the CPU path


def test_cuda_without_a_gpu_is_refused_clearly(dataset, tmp_path, no_cuda):
    with pytest.raises(
        WsvadError, match=r"--device cuda:1: CUDA is not available here \(torch .*use --device cpu"
    ):
        check_device("cuda:1")
    with pytest.raises(WsvadError, match="--device cuda: CUDA is not available"):
        run_extract(cfg_for(dataset, tmp_path / "s", device="cuda"))
    check_device("cpu")


def test_a_gpu_index_past_the_visible_ones_is_refused(fake_cuda):
    fake_cuda(2)
    check_device("cuda")
    check_device("cuda:1")
    with pytest.raises(
        WsvadError,
        match=r"^--device cuda:2: this process sees 2 GPU\(s\) \(CUDA_VISIBLE_DEVICES may hide",
    ):
        check_device("cuda:2")


def test_fp32_on_cuda_turns_tf32_convolutions_off(monkeypatch):
    from wsvad.extract.accel import prepare_model

    # restored after the test: the flags are process-wide
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    model = torch.nn.Conv3d(3, 4, 1)
    assert prepare_model(model, ExtractConfig(device="cpu")) is model
    assert torch.backends.cudnn.allow_tf32  # the CPU path changes nothing
    prepare_model(model, ExtractConfig(device="cuda:0"))
    assert not torch.backends.cudnn.allow_tf32  # fp32 on a GPU means IEEE fp32 convolutions
    prepare_model(model, ExtractConfig(device="cuda", precision="bf16"))
    assert torch.backends.cudnn.allow_tf32


def test_gpus_per_node_needs_cuda_and_pins_one_gpu_per_worker():
    from distributed import Client

    from wsvad.pipeline.cluster import ClusterConfig, _gpu_cluster

    with pytest.raises(ValueError, match="cluster.gpus_per_node needs device 'cuda'.*got 'cuda:1'"):
        ExtractConfig(device="cuda:1", cluster={"gpus_per_node": 2})
    ExtractConfig(device="cuda", cluster={"gpus_per_node": 2})
    assert ClusterConfig(gpus_per_node=4, threads_per_worker=None).compute_threads == max(
        1, (os.cpu_count() or 1) // 4
    )
    # the pinning itself needs no GPU: each worker process must see exactly its own device index
    with _gpu_cluster(ClusterConfig(gpus_per_node=2)) as cluster, Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    assert sorted(seen.values()) == ["0", "1"]


@pytest.mark.slow
def test_compile_gives_the_same_features(dataset, tmp_path):
    # torch.compile (inductor, C++ on CPU) takes ~1 min here, hence slow
    run_extract(cfg_for(dataset, tmp_path / "eager"))
    run_extract(cfg_for(dataset, tmp_path / "compiled", compile=True))
    a, b = (
        FeatureStore.open(tmp_path / "eager").read("a"),
        FeatureStore.open(tmp_path / "compiled").read("a"),
    )
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
