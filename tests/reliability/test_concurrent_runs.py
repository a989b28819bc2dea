"""One writer per run directory: a second ``wsvad train`` into a run that a live ``wsvad train`` is
writing, or ``wsvad evaluate --run`` on it, is refused with one line naming the other process
(pid, host, command), as a second ``wsvad extract`` on a store is."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wsvad import locks
from wsvad.cli import run
from wsvad.errors import EXIT_ERROR, WsvadError
from wsvad.locks import command_text


def _train_args(store: Path, out: Path, iterations: int = 400) -> list[str]:
    return [
        "train",
        "--store",
        str(store),
        "--out",
        str(out),
        "--detector",
        "mil",
        "--seed",
        "3",
        "--iterations",
        str(iterations),
        "--set",
        "checkpoint_every=10",
        "--set",
        "sampler.batch_per_class=4",
        "--set",
        "detector.params.hidden1=32",
    ]


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_second_train_or_an_evaluate_on_a_run_being_trained_is_refused(
    tmp_path, spawn, wait_for, make_planted_store, capsys
):
    store = make_planted_store(crops=1, n_train=6, n_test=3, shift=2.0).path
    out = tmp_path / "run"
    first_args = _train_args(store, out)
    first = spawn(first_args)
    wait_for(
        lambda: (out / "checkpoints" / "last.json").is_file() or first.poll() is not None,
        120,
        "the first training's first checkpoint",
    )
    os.kill(first.pid, signal.SIGSTOP)  # hold it inside its run, whatever the machine's speed
    try:
        assert first.poll() is None, "training finished before the test could hold it"
        before = _files(out)
        held = (
            f"another wsvad process (pid {first.pid} on {socket.gethostname()}: "
            f"{command_text(['wsvad', *first_args])}) is training into this run directory; wait "
            f"for it to finish, or delete {out / '.lock'} if that process is gone"
        )
        for extra in ([], ["--overwrite"]):
            assert run(_train_args(store, out) + extra) == EXIT_ERROR
            assert _errors(capsys.readouterr().err) == [f"error: {out}: {held}"]
        assert run(["evaluate", "--run", str(out), "--no-plots"]) == EXIT_ERROR
        assert _errors(capsys.readouterr().err) == [f"error: {out}: {held}"]
        assert _files(out) == before  # the refused commands neither wrote nor deleted anything
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-2000:]
    assert not (out / ".lock").exists()
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert run(["evaluate", "--run", str(out), "--no-plots"]) == 0  # finished: readable


def test_a_seed_of_a_multi_seed_run_is_refused_while_the_run_is_trained(tmp_path, capsys):
    """``--run RUN/seed-1`` of a multi-seed run: the lock is the parent's."""
    out = tmp_path / "multi"
    (out / "seed-1").mkdir(parents=True)
    # any live process of this host stands in for the training
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        lock = {"host": socket.gethostname(), "pid": holder.pid, "command": "wsvad train x"}
        (out / ".lock").write_text(json.dumps(lock))
        assert run(["evaluate", "--run", str(out / "seed-1"), "--no-plots"]) == EXIT_ERROR
        assert _errors(capsys.readouterr().err) == [
            f"error: {out}: another wsvad process (pid {holder.pid} on {socket.gethostname()}: "
            f"wsvad train x) is training into this run directory; wait for it to finish, or "
            f"delete {out / '.lock'} if that process is gone"
        ]
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: the same command now gets as far as the (empty) seed directory
    assert run(["evaluate", "--run", str(out / "seed-1"), "--no-plots"]) == EXIT_ERROR
    assert "not a run directory (no run.json" in capsys.readouterr().err


def test_a_dead_holder_is_taken_over_and_another_hosts_lock_is_respected(tmp_path):
    lock, owner = tmp_path / ".lock", tmp_path
    proc_pid = os.fork() if sys.platform != "win32" else 0
    if proc_pid == 0:  # the child exits at once: its pid is dead once reaped
        os._exit(0)
    os.waitpid(proc_pid, 0)
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": proc_pid, "command": "x"}))
    locks.acquire(lock, owner, "writing this store")  # taken over
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    locks.release(lock)
    assert not lock.exists()
    lock.write_text(json.dumps({"host": "elsewhere", "pid": proc_pid, "command": "wsvad extract"}))
    with pytest.raises(WsvadError, match=r"\(pid \d+ on elsewhere: wsvad extract\) is writing"):
        locks.acquire(lock, owner, "writing this store")
    locks.release(lock)  # never deletes another process's lock
    assert lock.exists()
    lock.write_text("{half-written")  # a lock being written this instant: held, holder unnamed
    with pytest.raises(WsvadError, match=r"\(pid None on None\) is writing this store"):
        locks.acquire(lock, owner, "writing this store")


def test_the_recorded_command_is_one_printable_line():
    text = command_text(["wsvad", "train", "--out", "a\nb", "caf\udce9", "x" * 500])
    assert "\n" not in text and text.isprintable() and len(text) == 200 and text.endswith("...")
    assert text.startswith("wsvad train --out 'a\\nb' 'caf\\udce9' ")
