"""Helpers for the transfer tests: slices of the real published lists and tiny fake feature
files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest


def raw_lines(path: Path) -> list[bytes]:
    """The lines of a real list with their own endings (CRLF stays CRLF, a missing final newline
    stays missing)."""
    return path.read_bytes().splitlines(keepends=True)


def entry_name(line: bytes) -> str:
    """File name of a list entry, Windows or POSIX."""
    return line.decode().strip().replace("\\", "/").rsplit("/", 1)[-1]


def save(path: Path, shape: tuple[int, ...], seed: int, dtype: str = "float32") -> np.ndarray:
    """Write a small random ``.npy`` and return its values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    np.save(path, values)
    return values


@pytest.fixture
def kit(benchmark_lists):
    return SimpleNamespace(
        lists=benchmark_lists, raw_lines=raw_lines, entry_name=entry_name, save=save
    )
