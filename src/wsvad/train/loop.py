"""The optimisation loop: optimizer by name, logging, checkpoints with RNG state, resume, selection.

``RUN/checkpoints/last.safetensors`` holds the model (``model.*``), the optimizer's tensors
(``optim.<param>.<key>``) and torch's RNG state; ``last.json`` holds everything else (step,
sampler position, python/numpy RNG states, optimizer scalars, best-so-far) plus the sha256 of the
tensors file, and is written last (the completion marker); the tensors it names are kept aside
until it is replaced, so a kill between the two writes resumes from the previous checkpoint. A
run killed at any point resumes from its last checkpoint and ends with the same weights as an
uninterrupted run (tests/train/test_train_run.py::test_resumed_run_equals_uninterrupted_run, and
tests/reliability/test_killed_training.py for a SIGKILL).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsvad.detectors.base import Detector
from wsvad.detectors.checkpoint import read_pair, save_detector, save_pair_keeping_previous
from wsvad.train.config import OptimConfig, TrainConfig

log = logging.getLogger(__name__)

Progress = Callable[[int, int, dict[str, float]], None]


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer named in ``cfg`` (names as in the papers: adam, adagrad, adadelta, rmsprop,
    radam, sgd); ``eps``, ``initial_accumulator_value`` and ``rho`` left ``None`` keep torch's
    defaults. Options that do not apply to the named optimizer are ignored, as ``momentum`` is for
    adam (the detector's defaults fill every key whatever the optimizer)."""
    wd = cfg.weight_decay or 0.0
    eps = {} if cfg.eps is None else {"eps": cfg.eps}
    if cfg.name == "adam":
        params = list(params)
        # torch's fused kernel: one pass per tensor instead of a dozen foreach passes (joint's 43 M
        # parameters: 0.12 -> 0.03 s per step on 2 cores); equal to the foreach step within
        # float32 rounding (tests/train/test_train_loop.py)
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=wd, fused=fused or None, **eps)
    if cfg.name == "adagrad":
        start = cfg.initial_accumulator_value or 0.0
        return torch.optim.Adagrad(
            params, lr=cfg.lr, weight_decay=wd, initial_accumulator_value=start, **eps
        )
    if cfg.name == "adadelta":
        rho = 0.9 if cfg.rho is None else cfg.rho
        return torch.optim.Adadelta(params, lr=cfg.lr, rho=rho, weight_decay=wd, **eps)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=cfg.lr, weight_decay=wd, momentum=cfg.momentum or 0.0, **eps
        )
    if cfg.name == "radam":
        return torch.optim.RAdam(params, lr=cfg.lr, weight_decay=wd, **eps)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=wd, momentum=cfg.momentum or 0.0)
    raise ValueError(f"unknown optimizer {cfg.name!r}")


def lr_at(cfg: OptimConfig, step: int) -> float:
    """Step-decay schedule (CLAWS: x0.1 after 80k); a pure function of the step, so nothing to
    save."""
    return float(cfg.lr) * cfg.lr_gamma ** sum(1 for m in cfg.lr_milestones if step >= m)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------------------- checkpoints
def _split_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entries in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    stem: Path, detector: Detector, opt, sampler, step: int, extra: dict[str, Any]
) -> None:
    opt_tensors, opt_meta = _split_optimizer(opt)
    tensors = {f"model.{k}": v for k, v in detector.state_dict().items()}
    tensors.update(opt_tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    meta = {
        "step": step,
        "optimizer": opt_meta,
        "sampler": sampler.state(),
        "rng": {
            "python": [py_state[0], list(py_state[1]), py_state[2]],
            "numpy": [
                np_state[0],
                np_state[1].tolist(),
                int(np_state[2]),
                int(np_state[3]),
                float(np_state[4]),
            ],
        },
        **extra,
    }
    save_pair_keeping_previous(stem, tensors, meta)


def load_checkpoint(stem: Path, detector: Detector, opt, sampler) -> dict[str, Any]:
    tensors, meta = read_pair(stem, previous=True)
    detector.load_state_dict(
        {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    )
    opt.load_state_dict(_join_optimizer(tensors, meta["optimizer"]))
    sampler.load_state(meta["sampler"])
    torch.set_rng_state(tensors["rng.torch"])
    py = meta["rng"]["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    nps = meta["rng"]["numpy"]
    np.random.set_state((nps[0], np.array(nps[1], dtype=np.uint32), nps[2], nps[3], nps[4]))
    return meta


# ---------------------------------------------------------------------------- loop
@dataclass
class LoopResult:
    steps: int  # steps done in total (across resumes)
    finished: bool  # False when stopped early by stop_after
    best_step: int | None
    best_score: float | None
    seconds: float  # wall time of this session's steps


@dataclass
class _Position:
    """Where training stands; saved in every checkpoint, restored on resume."""

    step: int = 0
    best_step: int | None = None
    best_score: float | None = None


def train_loop(
    detector: Detector,
    sampler,
    cfg: TrainConfig,
    run_dir: Path,
    total_steps: int,
    model_meta: dict[str, Any],
    evaluate: Callable[[Detector], float] | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> LoopResult:
    """Train ``detector`` for ``total_steps`` steps, resuming from ``checkpoints/last`` if any.

    Args:
        evaluate: model selection score (higher is better), called every ``cfg.selection.every``
            steps and at the end when selection is ``val`` or ``test-best``; the best weights are
            kept in ``checkpoints/best``.
        progress: ``callable(step, total, last_logged_values)`` after every step.
        stop_after: stop (with a checkpoint) after this many steps of this session (tests).
    """
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    opt = build_optimizer(detector.parameters(), cfg.optim)
    at = _resume(ckpt_dir / "last", detector, opt, sampler, run_dir)
    loss_log = _LossLog(run_dir / "log.jsonl")

    def checkpoint() -> None:
        extra = {"total_steps": total_steps, "best_step": at.best_step, "best_score": at.best_score}
        save_checkpoint(ckpt_dir / "last", detector, opt, sampler, at.step, extra)

    def result(finished: bool) -> LoopResult:
        return LoopResult(at.step, finished, at.best_step, at.best_score, time.perf_counter() - t0)

    detector.train()
    logged: dict[str, float] = {}
    first_step, t0 = at.step, time.perf_counter()  # this session's
    try:
        while at.step < total_steps:
            if stop_after is not None and at.step - first_step >= stop_after:
                checkpoint()
                return result(finished=False)
            losses = _optimizer_step(detector, opt, sampler, cfg, at.step)
            at.step += 1
            loss_log.add(losses)
            last_step = at.step == total_steps
            if at.step % cfg.log_every == 0 or last_step:
                logged = loss_log.write(at.step, lr_at(cfg.optim, at.step - 1))
                if not np.isfinite(logged["loss"]):
                    checkpoint()
                    raise _diverged(run_dir, logged["loss"], at.step)
            if evaluate is not None and (at.step % cfg.selection.every == 0 or last_step):
                _select(detector, evaluate, at, ckpt_dir / "best", loss_log.path, cfg, model_meta)
            if at.step % cfg.checkpoint_every == 0 or last_step:
                checkpoint()
            if progress is not None:
                progress(at.step, total_steps, logged)
    except KeyboardInterrupt:
        checkpoint()  # never lose finished steps; the same command resumes
        raise
    return result(finished=True)


def _resume(last: Path, detector: Detector, opt, sampler, run_dir: Path) -> _Position:
    """The position of the last checkpoint (model, optimizer, sampler and RNGs restored from it),
    or step 0 when there is none."""
    if not last.with_name(last.name + ".json").is_file():
        return _Position()
    meta = load_checkpoint(last, detector, opt, sampler)
    log.info("resumed %s at step %d", run_dir, meta["step"])
    return _Position(meta["step"], meta.get("best_step"), meta.get("best_score"))


def _diverged(run_dir: Path, loss: float, step: int) -> FloatingPointError:
    return FloatingPointError(f"{run_dir}: loss became {loss} at step {step}; checkpoint kept")


def _optimizer_step(detector: Detector, opt, sampler, cfg: TrainConfig, step: int):
    """One optimizer step on the sampler's next batch; returns the detector's loss terms."""
    if sampler.at_epoch_start:
        detector.start_epoch(sampler.videos)
    for group in opt.param_groups:
        group["lr"] = lr_at(cfg.optim, step)
    batch = sampler.next_batch()
    if cfg.device != "cpu":
        batch = type(batch)(*(None if t is None else t.to(cfg.device) for t in batch))
    with torch.autocast(
        device_type=torch.device(cfg.device).type,
        dtype=torch.bfloat16,
        enabled=cfg.precision == "bf16",
    ):
        losses = detector.loss(batch)
    opt.zero_grad(set_to_none=True)
    losses["loss"].backward()
    opt.step()
    return losses


class _LossLog:
    """``log.jsonl``: the mean of each loss term since the previous line, and the steps per
    second."""

    def __init__(self, path: Path):
        self.path = path
        self.sums: dict[str, float] = {}
        self.count = 0
        self.since = time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value.detach())
        self.count += 1

    def write(self, step: int, lr: float) -> dict[str, float]:
        """Append one line for ``step`` and start a new window; returns the values logged."""
        now = time.perf_counter()
        logged = {k: v / self.count for k, v in self.sums.items()}
        logged["it_s"] = self.count / max(now - self.since, 1e-9)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, "lr": lr, **logged}) + "\n")
        self.sums, self.count, self.since = {}, 0, now
        return logged


def _select(
    detector: Detector,
    evaluate: Callable[[Detector], float],
    at: _Position,
    best: Path,
    log_path: Path,
    cfg: TrainConfig,
    model_meta: dict[str, Any],
) -> None:
    """Score the current weights for model selection, log the score, and keep the weights in
    ``best`` when they beat the best so far."""
    detector.eval()
    score = float(evaluate(detector))
    detector.train()
    with open(log_path, "a", encoding="utf-8") as fh:
        fh.write(
            json.dumps({"step": at.step, "selection": cfg.selection.mode, "score": score}) + "\n"
        )
    if at.best_score is None or score > at.best_score:
        at.best_step, at.best_score = at.step, score
        save_detector(best, detector, {**model_meta, "step": at.step, "selection_score": score})
