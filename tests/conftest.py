"""Fixtures shared by every test package: tiny videos encoded with PyAV, tiny feature stores with
planted anomalies, the real benchmark lists, a local SLURM.

Helpers are fixtures because --import-mode=importlib cannot import a conftest as a module.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def write_video(
    path: Path,
    n_frames: int = 40,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    codec: str = "libx264",
    frames: np.ndarray | None = None,
    seed: int = 0,
    options: dict[str, str] | None = None,
    pts: list[int] | None = None,
) -> Path:
    """Encode a small video with PyAV. ``size`` is (width, height). Frame ``i`` has value-coded
    content (a bright bar whose position encodes ``i``) unless ``frames`` ``[N, H, W, 3]`` is
    given. ``options``: muxer options (``{"movflags": "faststart"}``); ``pts``: frame ``i`` shown at
    ``pts[i] / fps`` seconds instead of ``i / fps`` (gaps make null frames in AVI, a squeezed
    timeline elsewhere)."""
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
    with av.open(str(path), mode="w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            if pts is not None:
                picture.pts, picture.time_base = pts[i], Fraction(1, fps)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Every test starts with torch on one thread: two shared cores, where a second thread costs
    more than it gives on the suite's small tensors, and one count everywhere keeps results
    bit-identical. Set before each test, not once: an in-process extraction (the inline runner)
    sets its worker's own count."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def make_video(tmp_path):
    """Factory: ``make_video("a.mp4", n_frames=40, size=(64, 48), codec="libx264")`` -> Path under
    tmp_path."""

    def factory(name: str = "video.mp4", **kwargs) -> Path:
        return write_video(tmp_path / name, **kwargs)

    return factory


def cut_before_packet(path: Path, keep: int) -> Path:
    """Truncate ``path`` in place where its video packet ``keep`` (in file order) begins: a clean
    cut that decoders read, without an error, as a video of ``keep`` frames."""
    import av

    with av.open(str(path)) as container:
        starts = sorted(packet.pos for packet in container.demux(video=0) if packet.size)
    with open(path, "r+b") as file:
        file.truncate(starts[keep])
    return path


@pytest.fixture
def cut_video():
    """``cut_video(path, keep)``: :func:`cut_before_packet`."""
    return cut_before_packet


def noise_frames(n_frames: int, size: tuple[int, int] = (64, 48), seed: int = 0) -> np.ndarray:
    """Random frames ``[N, H, W, 3]``: they compress badly, so the data, not the header, makes up
    most of the file (a cut at a fraction of the bytes keeps the header)."""
    width, height = size
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n_frames, height, width, 3), dtype=np.uint8)


@pytest.fixture
def make_noise_video(tmp_path):
    """Factory: ``make_noise_video("a.mkv", n_frames=120, codec=..., options=..., pts=...)`` ->
    Path under tmp_path, frames of :func:`noise_frames`."""

    def factory(name: str, n_frames: int = 120, **kwargs) -> Path:
        return write_video(tmp_path / name, frames=noise_frames(n_frames), **kwargs)

    return factory


PLANTED_SNIPPET = 16  # frames per snippet of a planted store


def write_planted_store(
    path: Path,
    feature_shape: tuple[int, ...] = (16,),
    crops: int = 2,
    n_train: int = 12,
    n_test: int = 6,
    snippets: tuple[int, int] = (24, 48),
    run_lengths: tuple[int, int] = (3, 8),
    shift: float = 1.5,
    planted_fraction: float = 0.25,
    seed: int = 0,
    labels_in_attrs: bool = True,
):
    """A tiny feature store with planted anomalies, written with FeatureStore itself.

    Normal videos: N(0, 1) features, a number of snippets drawn from ``[snippets[0], snippets[1])``.
    Abnormal videos: the same, plus a run of consecutive snippets (its length drawn from
    ``run_lengths``, half-open too) shifted by ``shift`` on the first ``planted_fraction`` of the
    feature's last axis, in every crop. ``n_train``/``n_test`` videos per label; test videos carry
    the run as frame intervals. Ids: ``train_normal_03``, ``test_abnormal_01``...; classes
    ``["Planted"]``. Shorter videos and longer runs make the anomaly easier to find.
    """
    from wsvad.pipeline.store import FeatureStore

    rng = np.random.default_rng(seed)
    store = FeatureStore.create(
        path,
        {
            "feature_shape": list(feature_shape),
            "dtype": "float32",
            "crops": crops,
            "backbone": "synthetic",
            "config_hash": f"planted-{seed}-{feature_shape}-{crops}",
            "dataset": "planted",
            "snippet_len": PLANTED_SNIPPET,
            "stride": PLANTED_SNIPPET,
            "tail": "drop",
        },
    )
    planted = max(1, int(feature_shape[-1] * planted_fraction))
    for split, count in (("train", n_train), ("test", n_test)):
        for label in (0, 1):
            for i in range(count):
                n = int(rng.integers(*snippets))
                feats = rng.normal(size=(n, crops, *feature_shape)).astype(np.float32)
                intervals: list[list[int]] = []
                if label:
                    length = int(rng.integers(*run_lengths))
                    start = int(rng.integers(0, n - length))
                    feats[start : start + length, ..., :planted] += shift
                    intervals = [[start * PLANTED_SNIPPET, (start + length) * PLANTED_SNIPPET]]
                vid = f"{split}_{'abnormal' if label else 'normal'}_{i:02d}"
                attrs = {"n_frames": n * PLANTED_SNIPPET + 5, "fps": 25.0}
                if labels_in_attrs:
                    attrs.update(
                        split=split,
                        label=label,
                        classes=["Planted"] if label else [],
                        intervals=intervals if split == "test" else None,
                    )
                store.write_video(vid, feats, attrs)
    return store


@pytest.fixture
def make_planted_store(tmp_path):
    """Factory: ``make_planted_store("name", n_train=2, ...)`` -> FeatureStore under tmp_path
    (arguments of :func:`write_planted_store`)."""

    def factory(name: str = "store", **kwargs):
        return write_planted_store(tmp_path / name, **kwargs)

    return factory


@pytest.fixture(scope="module")
def make_module_store(tmp_path_factory):
    """``make_planted_store`` for module-scoped fixtures (a store shared by a module's tests)."""

    def factory(name: str = "store", **kwargs):
        return write_planted_store(tmp_path_factory.mktemp(name) / name, **kwargs)

    return factory


@pytest.fixture
def planted_store(make_planted_store):
    """The default planted store: 16-d features, 2 crops, 12 train + 6 test videos per label."""
    return make_planted_store()


@pytest.fixture(scope="session")
def benchmark_lists() -> Path:
    """The real, byte-exact official lists and annotations, as shipped in the package
    (wsvad/data/benchmark_lists), sha256-checked: a damaged copy fails every test using it."""
    from wsvad.data.packaged import lists_dir, verify_all

    assert verify_all() == []
    return lists_dir()


def cuda_missing() -> str | None:
    """Why ``gpu`` tests cannot run here (``None``: a CUDA device is usable)."""
    import torch

    if torch.cuda.is_available():
        return None
    return (
        f"gpu test: needs a CUDA device; torch {torch.__version__} (CUDA build "
        f"{torch.version.cuda or 'none'}) sees none. Run `make test-gpu` on a GPU machine"
    )


def pytest_configure(config):
    """``WSVAD_FAKE_CUDA=1``: torch reports one CUDA device for the whole session, so a CPU machine
    finds the tests that assume there is no GPU (docs/guarantees.md). Nothing can run on it: the
    ``gpu`` tests stay deselected."""
    if os.environ.get("WSVAD_FAKE_CUDA") == "1":
        import torch

        torch.cuda.is_available = lambda: True
        torch.cuda.device_count = lambda: 1


def pytest_runtest_setup(item):
    """``@pytest.mark.gpu`` tests skip, with the reason, where CUDA is missing (``make test-gpu``
    selects them; the default run deselects them)."""
    if item.get_closest_marker("gpu") is not None:
        reason = cuda_missing()
        if reason:
            pytest.skip(reason)


@pytest.fixture
def no_cuda(monkeypatch):
    """This test sees no GPU, whatever the machine has: expectations of CPU-only machines (the
    "CUDA is not available" messages) hold on GPU machines too. Only this process: dask workers
    started by the test still see the real devices."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def fake_cuda(monkeypatch):
    """Factory: ``fake_cuda(2)`` makes torch report 2 usable CUDA devices (to test the device
    guards on any machine; nothing may actually be run on them)."""
    import torch

    def factory(n_devices: int = 1) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n_devices > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n_devices)

    return factory


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
    """A real single-node SLURM on localhost for the session (skips, with the reason, where it can't
    start)."""

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
