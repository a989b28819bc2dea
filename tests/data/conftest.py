"""Fixtures for the dataset tests: layouts built from the REAL official lists, with empty
placeholder files where only a video's path matters (parsing never opens them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def touch_all(root: Path, rel_paths) -> None:
    """Create empty placeholder files (and their folders) under ``root``."""
    for rel in rel_paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


@pytest.fixture(scope="session")
def ucf_real_root(benchmark_lists, tmp_path_factory) -> Path:
    """The official UCF-Crime lists and annotation over 1900 empty placeholder videos."""
    src = benchmark_lists / "ucf_crime"
    root = tmp_path_factory.mktemp("ucf_real")
    for name in (
        "Anomaly_Train.txt",
        "Anomaly_Test.txt",
        "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
    ):
        shutil.copy(src / name, root / name)
    lines = (src / "Anomaly_Train.txt").read_text().split() + (
        src / "Anomaly_Test.txt"
    ).read_text().split()
    touch_all(root, lines)
    return root


@pytest.fixture
def touch():
    """``touch(root, rel_paths)``: empty placeholder files (importlib mode cannot import
    conftest)."""
    return touch_all
