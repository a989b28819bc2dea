"""Weight files: checksums, a pickle reader that only builds numpy arrays, the conversion cache, and
checked loading of user-supplied PyTorch state dicts.

Converted weights live in ``$WSVAD_CACHE_DIR`` (default ``~/.cache/wsvad``) as safetensors files
named after the source checksum, each with a ``.sha256`` sidecar written after it: a file without a
matching sidecar is a torn or corrupted write and is converted again. Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from wsvad.atomic import atomic_path, write_text_atomic
from wsvad.checksums import sha256_file
from wsvad.errors import WsvadError

log = logging.getLogger(__name__)

# The only callables a pickle of plain numpy arrays needs; anything else is refused before it runs.
_NUMPY_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def cache_dir() -> Path:
    """Where converted weights are kept: ``$WSVAD_CACHE_DIR`` or ``~/.cache/wsvad``."""
    return Path(os.environ.get("WSVAD_CACHE_DIR") or Path.home() / ".cache" / "wsvad").expanduser()


@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def sha256_of(path: Path) -> str:
    """sha256 of a weights file, cached per (path, size, mtime) so specs stay cheap."""
    try:
        st = Path(path).stat()
    except OSError as exc:
        raise WsvadError(f"{path}: cannot read weights ({exc.strerror or exc})") from exc
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def verify_sha256(path: Path, expected: str) -> None:
    """Raise WsvadError unless ``path`` exists and hashes to ``expected``."""
    if not Path(path).is_file():
        raise WsvadError(f"{path}: weights file not found")
    actual = sha256_file(path)
    if actual != expected:
        raise WsvadError(
            f"{path}: sha256 mismatch (got {actual}, expected {expected}); the file is corrupted "
            "or not the expected checkpoint, reinstall it"
        )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        # numpy 2 renamed numpy.core to numpy._core; old pickles still name the former.
        module = (
            module.replace("numpy.core", "numpy._core", 1)
            if module.startswith("numpy.core")
            else module
        )
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays are expected"
            )
        return super().find_class(module, name)


def load_numpy_pickle(path: Path, expected_sha256: str) -> dict:
    """Unpickle a nested dict of numpy arrays after checking its sha256; nothing else is built."""
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise WsvadError(
            f"{path}: sha256 mismatch (got {actual}, expected {expected_sha256}); the file is "
            "corrupted or not the expected checkpoint, reinstall it"
        )
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise WsvadError(f"{path}: not a pickle of numpy arrays ({exc})") from exc


def fold_batch_norm(
    kernel: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    gamma: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold an eval-mode BatchNorm into the preceding bias-free conv.

    Returns ``(w, b)`` with ``conv_w(x) + b == gamma * (conv(x) - mean) / sqrt(var + eps) + beta``;
    ``gamma=None`` is a BatchNorm without scale (Sonnet/TF I3D). Computed in float64, returned as
    float32.

    Args:
        kernel: ``[O, I, kT, kH, kW]`` conv weights.
        beta, mean, var, gamma: ``[O]``.
    """
    scale = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    if gamma is not None:
        scale = scale * np.asarray(gamma, np.float64)
    weight = np.asarray(kernel, np.float64) * scale[:, None, None, None, None]
    bias = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return weight.astype(np.float32), bias.astype(np.float32)


def cached_conversion(
    stem: str, source_sha256: str, convert: Callable[[], Mapping[str, np.ndarray]]
) -> dict:
    """Return the converted tensors for ``stem``, converting (and caching) them on first use.

    ``convert`` must verify its source itself; it runs only when the cache holds no intact copy.
    Concurrent first uses (several dask workers) each write a private temp file and rename it into
    place, so readers never see a partial file.
    """
    import torch
    from safetensors.torch import load_file, save_file

    directory = cache_dir()
    target = directory / f"{stem}-{source_sha256[:16]}.safetensors"
    sidecar = target.with_name(target.name + ".sha256")
    if target.is_file() and sidecar.is_file():
        recorded = sidecar.read_text(encoding="utf-8").strip()
        if sha256_file(target) == recorded:
            return load_file(str(target))
        log.warning("%s: checksum does not match %s; converting again", target, sidecar.name)

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in convert().items()}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            save_file(tensors, str(tmp), metadata={"source_sha256": source_sha256, "stem": stem})
            digest = sha256_file(tmp)
        write_text_atomic(sidecar, digest + "\n")
        log.info("converted %s weights to %s (sha256 %s)", stem, target, digest)
    except OSError as exc:
        # A read-only or full cache costs a conversion per process, not a failure.
        log.warning("%s: cannot cache converted weights (%s)", directory, exc.strerror or exc)
    return tensors


def load_state_dict_file(path: Path) -> dict:
    """Load a state dict from ``.safetensors`` or a ``torch.save`` file (``weights_only``: no code).

    Checkpoints that wrap the weights (``{"state_dict": ...}`` or ``{"model": ...}``) are unwrapped
    and a ``module.`` prefix (DataParallel) is dropped.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WsvadError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            with warnings.catch_warnings():
                # Harmless for plain state dicts, and the shared C3D file triggers it.
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types (UnpicklingError, RuntimeError, ...)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # torch's refusal is a page of advice (incl. "weights_only=False"); keep the reason
        blocked = [line for line in lines if "GLOBAL" in line]
        if blocked:
            raise WsvadError(
                f"{path}: cannot read weights ({type(exc).__name__}: {blocked[0]} The file holds "
                "Python objects, not only tensors; weights are read with "
                "torch.load(weights_only=True), which never runs code)"
            ) from exc
        reason = lines[0] if lines else ""
        raise WsvadError(f"{path}: cannot read weights ({type(exc).__name__}: {reason})") from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WsvadError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def check_state_dict(path: Path, state: Mapping, expected: Mapping[str, tuple[int, ...]]) -> dict:
    """Keep the keys ``expected`` lists; refuse missing or misshaped ones, naming each (extra keys,
    e.g. fc7/fc8 of a classifier, are ignored)."""
    missing = [k for k in expected if k not in state]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {shape}"
        for k, shape in expected.items()
        if k in state and tuple(state[k].shape) != tuple(shape)
    ]
    if missing or misshaped:
        parts = []
        if missing:
            parts.append(
                f"missing keys: {', '.join(missing[:8])}" + (" ..." if len(missing) > 8 else "")
            )
        if misshaped:
            parts.append(
                f"wrong shapes: {', '.join(misshaped[:8])}" + (" ..." if len(misshaped) > 8 else "")
            )
        raise WsvadError(f"{path}: not the expected weights; {'; '.join(parts)}")
    return {k: state[k].float() for k in expected}


def write_random_weights(
    path: Path, expected: Mapping[str, tuple[int, ...]], seed: int = 0
) -> Path:
    """Write seeded random weights with the key layout ``expected`` as a ``.safetensors`` file.

    For timing and tests of backbones whose real weights are not redistributable (c3d, i3d_r50):
    the network runs at the same speed with any values. BatchNorm running variances are drawn from
    [0.5, 1.5) so that folding them (1/sqrt(var)) stays finite; everything else is N(0, 0.01^2).
    The file is written next to ``path`` and renamed, so a reader never sees half of it.
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":  # load_state_dict_file picks the reader by suffix
        raise ValueError(
            f"{path}: random weights are written as safetensors; name the file *.safetensors"
        )
    gen = torch.Generator().manual_seed(int(seed))
    state = {
        key: torch.rand(shape, generator=gen) + 0.5
        if key.endswith("running_var")
        else torch.randn(shape, generator=gen) * 0.01
        for key, shape in expected.items()
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))
    return path
