"""benchmarks/train.py's goal line: issue #19's speed-up over the pre-change code, per thread
count, judged on the steady-state seconds per iteration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "train.py"
    spec = importlib.util.spec_from_file_location("train_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_goal_line_compares_the_steady_time_with_the_baseline_of_that_thread_count(bench):
    before = bench.BEFORE_S_PER_IT[1]["dam"]
    line = bench.goal_line({"detector": "dam", "steady_s": before / 2.5}, threads=1)
    assert f"goal: <= {before / 2:.2f} s/it (2x the pre-change code's {before} s/it" in line
    assert "= 2.50x -> met" in line
    slow = bench.goal_line({"detector": "dam", "steady_s": before / 1.5}, threads=1)
    assert "= 1.50x -> NOT met" in slow
    sta = bench.BEFORE_S_PER_IT[2]["sta"]
    assert "-> NOT met" in bench.goal_line({"detector": "sta", "steady_s": sta / 2.9}, threads=2)
    assert "-> met" in bench.goal_line({"detector": "sta", "steady_s": sta / 3.1}, threads=2)


def test_no_goal_without_a_measured_baseline(bench):
    assert bench.goal_line({"detector": "mil", "steady_s": 0.05}, threads=1) is None
    assert bench.goal_line({"detector": "dam", "steady_s": 1.0}, threads=4) is None
