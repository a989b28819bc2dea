"""Start and stop a real single-node SLURM (slurmctld + slurmd + munged) on localhost, as root.

Used by the ``slurm_cluster`` fixture and runnable by hand::

    python tests/local_slurm.py start /tmp/slurm   # prints the SLURM_CONF to export
    python tests/local_slurm.py stop /tmp/slurm

Each setting below was needed on Debian 12 without systemd (slurm-wlm 22.05, munge 0.5.15):
- munged runs as root with its key, socket, pid and seed files in a directory of ours (Debian's
  /var/lib/munge is refused as "insecure" for root); the socket's directory is world-executable
  and ``AuthInfo`` names the socket.
- ``proctrack/linuxproc`` and ``task/none``: the cgroup plugins need a mounted freezer cgroup;
  slurmd 22.05 still loads a cgroup plugin, hence ``cgroup.conf`` with ``cgroup/v1``.
- The node is the short host name at 127.0.0.1; ``RealMemory`` is what ``slurmd -C`` reports less
  1 GB (missing, dask-jobqueue's ``--mem`` cannot be met; too large, the node is INVAL).
- Both ports are picked free, so a stale cluster on the default ports cannot answer our clients.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sinfo", "squeue", "scontrol", "sbatch")


def why_unavailable() -> str | None:
    """A reason SLURM cannot be started here, or ``None`` when it can."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return (
            f"SLURM/munge binaries not installed ({', '.join(missing)}); .ci/run installs "
            "slurm-wlm and munge"
        )
    if os.geteuid() != 0:
        return "the local SLURM harness runs its daemons as root"
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pair(start: int = 16817) -> tuple[int, int]:
    for port in range(start, start + 400, 2):
        if _port_free(port) and _port_free(port + 1):
            return port, port + 1
    raise RuntimeError("no free pair of ports for slurmctld/slurmd")


def _real_memory_mb() -> int:
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    for token in out.split():
        if token.startswith("RealMemory="):
            return max(512, int(token.split("=")[1]) - 1024)
    raise RuntimeError(f"slurmd -C printed no RealMemory: {out!r}")


@dataclass
class LocalSlurm:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def _pid(self, name: str) -> int | None:
        path = self.root / f"{name}.pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def start(self, timeout: float = 30.0) -> LocalSlurm:
        reason = why_unavailable()
        if reason:
            raise RuntimeError(reason)
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(exist_ok=True)
        munge = self.root / "munge"
        munge.chmod(0o755)  # the socket's directory must be world-executable
        key = munge / "munge.key"
        if not key.exists():
            subprocess.run(["mungekey", "-c", "-k", str(key)], check=True, capture_output=True)
        key.chmod(0o600)
        sock = munge / "munge.socket"
        subprocess.run(
            [
                "munged",
                f"--key-file={key}",
                f"--socket={sock}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--seed-file={munge / 'munged.seed'}",
                f"--log-file={munge / 'munged.log'}",
                "--force",
            ],
            check=True,
            capture_output=True,
        )
        ctld_port, slurmd_port = _free_port_pair()
        host = socket.gethostname().split(".")[0]
        cpus = os.cpu_count() or 1
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=wsvadtest",
                    f"SlurmctldHost={host}(127.0.0.1)",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={slurmd_port}",
                    f"AuthInfo=socket={sock}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "DefMemPerCPU=512",
                    "SlurmUser=root",
                    "ReturnToService=2",
                    "MailProg=/bin/true",
                    "SchedulerType=sched/backfill",
                    "JobCompType=jobcomp/none",
                    "AccountingStorageType=accounting_storage/none",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
                    f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} "
                    f"RealMemory={_real_memory_mb()} State=UNKNOWN",
                    f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        (self.root / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\n")
        subprocess.run(["slurmctld"], env=self.env, check=True, capture_output=True)
        subprocess.run(["slurmd"], env=self.env, check=True, capture_output=True)
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True
            ).stdout.strip()
            if state == "idle" and self._pid("slurmd") and self._pid("slurmctld"):
                (self.root / "cluster.json").write_text(
                    json.dumps({"conf": str(self.conf), "ports": [ctld_port, slurmd_port]})
                )
                return self
            time.sleep(0.2)
        log = (
            (self.root / "log" / "slurmctld.log").read_text(errors="replace")[-2000:]
            if (self.root / "log" / "slurmctld.log").exists()
            else ""
        )
        self.stop()
        raise RuntimeError(
            f"SLURM node did not become idle within {timeout:.0f}s (state {state!r}); slurmctld "
            f"log tail:\n{log}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        env = self.env
        if self.conf.exists():
            jobs = subprocess.run(
                ["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True
            ).stdout.split()
            if jobs:
                subprocess.run(["scancel", *jobs], env=env, capture_output=True)
                deadline = time.monotonic() + timeout
                while (
                    time.monotonic() < deadline
                    and subprocess.run(
                        ["squeue", "-h"], env=env, capture_output=True, text=True
                    ).stdout.strip()
                ):
                    time.sleep(0.3)
            subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True)
        # Stop exactly the daemons we started, by their pid files.
        for name in ("slurmd", "slurmctld"):
            _wait_or_kill(self._pid(name), timeout)
        munge_pid = self.root / "munge" / "munged.pid"
        if munge_pid.exists():
            try:
                _wait_or_kill(int(munge_pid.read_text().strip()), 0.1, sig=signal.SIGTERM)
            except ValueError:
                pass


def _wait_or_kill(pid: int | None, timeout: float, sig: int = signal.SIGKILL) -> None:
    if not pid:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    action, folder = sys.argv[1], Path(sys.argv[2])
    cluster = LocalSlurm(folder)
    if action == "start":
        cluster.start()
        sys.stdout.write(f"export SLURM_CONF={cluster.conf}\n")
    else:
        cluster.stop()
