"""SIGKILL of a real ``wsvad train`` process, then the same command: it resumes from its last
checkpoint and ends with exactly the weights of an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest

from wsvad.cli import run

ITERATIONS = 300


def _args(store: Path, out: Path) -> list[str]:
    return [
        "train",
        "--store",
        str(store),
        "--out",
        str(out),
        "--detector",
        "mil",
        "--seed",
        "7",
        "--iterations",
        str(ITERATIONS),
        "--set",
        "checkpoint_every=10",
        "--set",
        "log_every=10",
        "--set",
        "sampler.batch_per_class=4",
        "--set",
        "detector.params.hidden1=32",
    ]


def _step(out: Path) -> int:
    try:
        return json.loads((out / "checkpoints" / "last.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def _weights(path: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))


@pytest.mark.parametrize(
    "seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)]
)
def test_sigkilled_training_resumes_to_the_weights_of_an_uninterrupted_run(
    seed, tmp_path, spawn, wait_for, make_planted_store
):
    store = make_planted_store(crops=1, n_train=6, n_test=3, shift=2.0).path
    killed = tmp_path / "killed"
    proc = spawn(_args(store, killed))
    kill_after = random.Random(seed).randrange(10, ITERATIONS // 2, 10)
    wait_for(
        lambda: _step(killed) >= kill_after or proc.poll() is not None,
        120,
        f"a checkpoint past step {kill_after}",
    )
    assert proc.poll() is None, "training finished before the kill: raise ITERATIONS"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at = _step(killed)
    assert 0 < stopped_at < ITERATIONS
    assert not (killed / "model.safetensors").exists()  # nothing claims to be finished
    assert (
        not (killed / "run.json").exists()
        or json.loads((killed / "run.json").read_text())["status"] != "complete"
    )

    assert run(_args(store, killed)) == 0  # the same command resumes
    reference = tmp_path / "reference"
    assert run(_args(store, reference)) == 0
    got, expected = (
        _weights(killed / "model.safetensors"),
        _weights(reference / "model.safetensors"),
    )
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].tobytes() == expected[name].tobytes(), name
    assert json.loads((killed / "run.json").read_text())["steps"] == ITERATIONS
    logged = [json.loads(line)["step"] for line in (killed / "log.jsonl").read_text().splitlines()]
    assert logged[-1] == ITERATIONS and max(logged) == ITERATIONS
