"""Fixtures shared by every test package: tiny videos encoded with PyAV, paths to the real lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARK_LISTS = REPO.parent / "shared" / "data" / "benchmark-lists"


def write_video(
    path: Path,
    n_frames: int = 40,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    codec: str = "libx264",
    frames: np.ndarray | None = None,
    seed: int = 0,
) -> Path:
    """Encode a small video with PyAV. ``size`` is (width, height). Frame ``i`` has value-coded
    content (a bright bar whose position encodes ``i``) unless ``frames`` ``[N, H, W, 3]`` is given."""
    import av

    width, height = size
    if frames is None:
        rng = np.random.default_rng(seed)
        base = rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
        frames = np.repeat(base[None], n_frames, axis=0)
        for i in range(n_frames):
            x = (i * 3) % max(1, width - 4)
            frames[i, :, x : x + 4] = 255
    pix_fmt = {"mjpeg": "yuvj420p"}.get(codec, "yuv420p")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for frame in frames:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def make_video(tmp_path):
    """Factory: ``make_video("a.mp4", n_frames=40, size=(64, 48), codec="libx264")`` -> Path under tmp_path."""

    def factory(name: str = "video.mp4", **kwargs) -> Path:
        return write_video(tmp_path / name, **kwargs)

    return factory


@pytest.fixture(scope="session")
def benchmark_lists() -> Path:
    """The real, byte-exact official lists and annotations (shared/data/benchmark-lists)."""
    if not BENCHMARK_LISTS.is_dir():
        pytest.skip(f"benchmark lists not found at {BENCHMARK_LISTS}")
    return BENCHMARK_LISTS


def _load_local_slurm():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "wsvad_local_slurm", Path(__file__).with_name("local_slurm.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node SLURM on localhost for the session (skips, with the reason, where it can't start)."""
    import os

    local_slurm = _load_local_slurm()
    reason = local_slurm.why_unavailable()
    if reason:
        pytest.skip(reason)
    cluster = local_slurm.LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"local SLURM could not start: {exc}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        cluster.stop()
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
