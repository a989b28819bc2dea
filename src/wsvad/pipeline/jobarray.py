"""The sbatch job-array script of ``wsvad slurm-script``: setup -> array of shards -> completeness
check.

One bash file submits three jobs chained with ``--dependency``:

1. ``setup`` creates the store (``wsvad extract ... --prepare-only``) before any shard starts, so
   no two tasks race to create it and only one process ever writes the store's root metadata;
2. the array (``afterok:setup``): task K runs ``wsvad extract ... --shard K/N`` inline, writing only
   its own videos, its own lock and its own ``failures/<shard>`` group;
3. ``check`` (``afterany:array``, so it also runs when some tasks failed or were killed) runs
   ``wsvad extract ... --check-only``, whose exit code 3 marks the job FAILED when videos failed or
   are missing. Re-running the script resumes: complete videos are skipped by every shard.

The job scripts are quoted heredocs, so nothing in them is expanded at submission time except the
job ids; ``$SLURM_ARRAY_TASK_ID`` expands when the task runs. No torch or dask import here.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Sequence
from typing import Literal

from wsvad import __version__
from wsvad.errors import WsvadError


def sbatch_memory(memory: str) -> str:
    """A memory size -> sbatch's ``--mem`` in MiB. ``GB`` counts 10^9 bytes (as dask-jobqueue does);
    ``G`` (sbatch's own style) and ``GiB`` count 2^30.

    >>> sbatch_memory("8GB"), sbatch_memory("8G"), sbatch_memory("1.5GiB"), sbatch_memory("512M")
    ('7629M', '8192M', '1536M', '512M')
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT])(i?)(B?)\s*", memory, flags=re.IGNORECASE)
    if not match:
        raise WsvadError(f"--memory {memory!r}: expected a size such as 8GB, 16G or 512MiB")
    number, unit = float(match.group(1)), match.group(2).upper()
    decimal = bool(match.group(4)) and not match.group(3)
    bytes_ = number * (1000 if decimal else 1024) ** ("KMGT".index(unit) + 1)
    return f"{max(1, int(bytes_ // 1024**2))}M"


# setup and check only create or read the store: one core and a little memory
_LIGHT_STEP = ["#SBATCH --cpus-per-task=1", "#SBATCH --mem=2000M"]


def job_array_script(
    extract_args: Sequence[str],
    *,
    shards: int,
    cores: int,
    memory: str,
    gpus: int,
    walltime: str,
    log_dir: str,
    python: str,
    queue: str | None = None,
    account: str | None = None,
    job_extra: Sequence[str] = (),
    max_parallel: int | None = None,
) -> str:
    """The bash text that submits setup, the ``shards``-task array and the check (see module doc).

    ``extract_args``: the ``wsvad extract`` options every step shares (dataset, root, out, config,
    --set ...); they are shell-quoted here.
    """
    if shards < 1:
        raise WsvadError(f"--shards {shards}: must be at least 1")
    shared = _shared_directives(walltime, queue, account, job_extra)
    base = " ".join(shlex.quote(a) for a in [python, "-m", "wsvad", "extract", *extract_args])
    throttle = f"%{max_parallel}" if max_parallel else ""
    array_directives = [
        f"#SBATCH --array=0-{shards - 1}{throttle}",
        f"#SBATCH --cpus-per-task={cores}",
        f"#SBATCH --mem={sbatch_memory(memory)}",
        *([f"#SBATCH --gres=gpu:{gpus}"] if gpus else []),
    ]
    light = _LIGHT_STEP + shared
    shard = f'--shard "$SLURM_ARRAY_TASK_ID/{shards}"'
    extract = f"exec {base} --workers 0 --threads-per-worker {cores} {shard}"
    submitted = f"setup $setup, extraction array $array ({shards} tasks), check $check"
    return "\n".join(
        [
            *_preamble(shards, log_dir),
            _job("setup", "", f"{log_dir}/setup-%j.out", light, f"exec {base} --prepare-only"),
            _job(
                "array",
                'afterok:"$setup"',
                f"{log_dir}/extract-%A_%a.out",
                array_directives + shared,
                extract,
            ),
            _job(
                "check",
                'afterany:"$array"',
                f"{log_dir}/check-%j.out",
                light,
                f"exec {base} --check-only",
            ),
            f'echo "submitted: {submitted}"',
            f'echo "logs: {log_dir}; the check job ends with exit code 3 if videos failed or are '
            'missing"',
            "",
        ]
    )


def _shared_directives(
    walltime: str, queue: str | None, account: str | None, job_extra: Sequence[str]
) -> list[str]:
    """The #SBATCH lines of every step: walltime, partition, account, then the user's extras."""
    shared = [f"#SBATCH --time={walltime}"]
    if queue:
        shared.append(f"#SBATCH --partition={queue}")
    if account:
        shared.append(f"#SBATCH --account={account}")
    return shared + [f"#SBATCH {line}" for line in job_extra]


Step = Literal["setup", "array", "check"]  # the script keeps each step's job id in $<step>
_JOB_NAMES: dict[Step, str] = {
    "setup": "wsvad-setup",
    "array": "wsvad-extract",
    "check": "wsvad-check",
}


def _job(step: Step, after: str, output: str, directives: list[str], command: str) -> str:
    """``<step>=$(sbatch ... <<'WSVAD_<STEP>' ... )``: submits one job running ``command`` and keeps
    its id in ``$<step>``; ``after``: its dependency (e.g. ``afterok:"$setup"``), or ``""``."""
    tag = f"WSVAD_{step.upper()}"
    dependency = f"--dependency={after} " if after else ""
    heredoc = [
        f"sbatch --parsable {dependency}<<'{tag}'",
        "#!/bin/bash",
        f"#SBATCH --job-name={_JOB_NAMES[step]}",
        f"#SBATCH --output={output}",
        *directives,
        "set -eu",
        command,
        tag,
    ]
    return f"{step}=$(" + "\n".join(heredoc) + "\n)"


def _preamble(shards: int, log_dir: str) -> list[str]:
    """What the script says about itself, its shell options and the log folder."""
    return [
        "#!/usr/bin/env bash",
        f"# Written by `wsvad slurm-script` (wsvad {__version__}) on "
        f"{time.strftime('%Y-%m-%d %H:%M')}.",
        f"# `bash <this file>` submits: setup (creates the store) -> {shards} array task(s), one "
        "shard of the",
        "# sorted video list each -> check (exit code 3 when videos failed or are missing).",
        "# Submitting again resumes: complete videos are skipped. Edit the #SBATCH lines freely.",
        "set -euo pipefail",
        f"mkdir -p {shlex.quote(log_dir)}",
    ]
