"""Golden figures of ONE training step of the public RTFM code (github.com/tianyu0207/RTFM).

Runs the authors' own ``train()`` (train.py) on their ``Model(2048, batch)`` (model.py), both
imported from a checkout given on the command line (never copied here), on CPU: ``Tensor.cuda``
is replaced by the identity at run time because ``RTFM_loss`` calls ``label.cuda()``. Everything
random is drawn from numpy generators defined in this file, so the wsvad test
(tests/detectors/test_rtfm_parity.py) rebuilds the same step without the public code:

- inputs: ``batch`` normal + ``batch`` abnormal videos, 10 crops inside, T = 32, D = 2048
  (``make_inputs``; the abnormal videos have a run of larger-magnitude snippets);
- the initial weights, under the public code's names (``make_initial_state``: Xavier-uniform
  kernels as its ``weight_init``, and non-trivial BatchNorm scales, biases and statistics so that
  every layer, the non-local block included, is exercised);
- the five dropout masks of the step (``make_masks``; p = 0.7, as ``Model.drop_out``), replayed
  by ``MaskReplay`` in the order the public model calls its dropout.

The step is the code's: Adam(lr 1e-3, weight_decay 5e-3) as main.py builds it. Saved (npz): the
loss and its smoothness / sparsity terms as train() computes them, every gradient and every updated
weight (whole when small, else 1,024 seeded entries plus the sums of the whole tensor), the updated
BatchNorm statistics, sha256 of the inputs, initial weights and masks (the test checks that it
rebuilt the same ones), and the
public code's state-dict names and shapes.

Command (the numbers in tests/detectors/data/rtfm_step.npz):

    git --git-dir=/work/.mirror/tianyu0207+RTFM/repo archive HEAD model.py train.py \\
        | tar x -C /tmp/rtfm
    python tools/parity/rtfm_step.py --rtfm-repo /tmp/rtfm \\
        --out tests/detectors/data/rtfm_step.npz
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

SEED = 0
BATCH = 2  # normal videos (and abnormal videos) per step; the public Model needs >= 2
CROPS, T, D = 10, 32, 2048
DROPOUT = 0.7
SAMPLES = 1024  # entries kept of each large tensor
FULL_BELOW = 5_000  # tensors with fewer entries are kept whole
LR, WEIGHT_DECAY = 1e-3, 5e-3  # main.py: optim.Adam(lr=config.lr[0], weight_decay=0.005)


def make_inputs(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """``(normal, abnormal)``, each ``(BATCH, CROPS, T, D)`` float32, non-negative (post-ReLU
    I3D-like); abnormal videos get a run of 4 snippets scaled up by 3 in every crop."""
    rng = np.random.default_rng(seed)
    feats = rng.gamma(0.6, 0.5, size=(2 * BATCH, CROPS, T, D)).astype(np.float32)
    for v in range(BATCH, 2 * BATCH):
        start = int(rng.integers(0, T - 4))
        feats[v, :, start : start + 4] *= np.float32(3.0)
    return feats[:BATCH], feats[BATCH:]


def make_initial_state(
    names: list[str], shapes: list[tuple[int, ...]], seed: int = SEED + 1
) -> dict[str, np.ndarray]:
    """Initial weights for the public names (sorted, so the draw order is fixed)."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in sorted(zip(names, shapes, strict=True)):
        if name.endswith("num_batches_tracked"):
            state[name] = np.zeros(shape, np.int64)
        elif name.endswith("running_var"):
            state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif name.endswith("running_mean"):
            state[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif name.endswith("weight") and len(shape) >= 2:  # Xavier-uniform, as weight_init
            field = int(np.prod(shape[2:]))
            bound = np.sqrt(6.0 / (shape[1] * field + shape[0] * field))
            state[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
        elif name.endswith("weight"):  # BatchNorm scale
            state[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:  # biases
            state[name] = (0.05 * rng.standard_normal(shape)).astype(np.float32)
    return state


def mask_shapes() -> list[tuple[int, ...]]:
    """The public model's five dropout calls, in order: MTN output, fc1, fc2, then the magnitude
    masks of the abnormal and of the normal videos."""
    rows = 2 * BATCH * CROPS
    return [(rows, T, D), (rows, T, 512), (rows, T, 128), (BATCH, T), (BATCH, T)]


def make_masks(seed: int = SEED + 2) -> list[np.ndarray]:
    """Keep-masks (bool) of the five dropout calls; every magnitude mask row keeps at least 3 of
    the 32 snippets, so top-3 never meets a tie among dropped (zero) magnitudes."""
    rng = np.random.default_rng(seed)
    masks = [rng.random(shape) >= DROPOUT for shape in mask_shapes()]
    for m in masks[3:]:
        for row in m:
            while row.sum() < 3:
                row[rng.integers(0, T)] = True
    return masks


class MaskReplay(torch.nn.Module):
    """Stands in for a dropout module: the i-th call multiplies by the i-th mask / (1 - p)."""

    def __init__(self, masks: list, p: float = DROPOUT):
        super().__init__()
        self.masks = [torch.from_numpy(m.astype(np.float32)) / (1.0 - p) for m in masks]
        self.calls = 0

    def forward(self, x):
        mask = self.masks[self.calls]
        if tuple(mask.shape) != tuple(x.shape):
            raise ValueError(f"dropout call {self.calls}: mask {tuple(mask.shape)} vs {x.shape}")
        self.calls += 1
        return x * mask


def sample_indices(name: str, size: int) -> np.ndarray | None:
    """The entries of a large tensor that are kept (seeded by its name), ``None``: all."""
    if size < FULL_BELOW:
        return None
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    return np.sort(np.random.default_rng(seed).choice(size, SAMPLES, replace=False)).astype(
        np.int32
    )


def sha256_arrays(arrays: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _public_step(repo: Path):
    """Build the public model with our initial weights and masks and run its train() once."""
    sys.path.insert(0, str(repo))
    torch.Tensor.cuda = lambda self, *a, **k: self  # RTFM_loss calls label.cuda()
    from model import Model  # the public code
    from train import train as public_train

    torch.manual_seed(0)
    model = Model(D, BATCH)
    names = list(model.state_dict())
    shapes = [tuple(v.shape) for v in model.state_dict().values()]
    init = make_initial_state(names, shapes)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
    model.drop_out = MaskReplay(make_masks())
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    normal, abnormal = make_inputs()

    class Plots:  # the Visualizer train() reports its losses to
        values: dict = {}

        def plot_lines(self, name, value):
            self.values[name] = value

    viz = Plots()
    batches = (
        (torch.from_numpy(normal), torch.zeros(BATCH)),
        (torch.from_numpy(abnormal), torch.ones(BATCH)),
    )
    public_train(iter([batches[0]]), iter([batches[1]]), model, BATCH, optimizer, viz, "cpu")
    assert model.drop_out.calls == 5, model.drop_out.calls
    return model, names, shapes, init, viz.values, (normal, abnormal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtfm-repo", type=Path, required=True, help="checkout with model.py")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, names, shapes, init, losses, inputs = _public_step(args.rtfm_repo)
    out: dict[str, np.ndarray] = {
        "loss": np.float64(losses["loss"]),
        "smooth": np.float64(losses["smooth loss"]),
        "sparse": np.float64(losses["sparsity loss"]),
        "public_names": np.array(names),
        "public_shapes": np.array([",".join(map(str, s)) for s in shapes]),
        "inputs_sha256": np.array(sha256_arrays(list(inputs))),
        "init_sha256": np.array(sha256_arrays([init[k] for k in sorted(init)])),
        "torch_version": np.array(torch.__version__),
    }
    out["masks_sha256"] = np.array(sha256_arrays(make_masks()))
    grads = {n: p.grad for n, p in model.named_parameters()}
    for name, value in model.state_dict().items():
        now = value.detach().numpy().ravel()
        idx = sample_indices(name, now.size)
        keep = slice(None) if idx is None else idx
        out[f"after/{name}"] = now[keep]
        if idx is not None:
            out[f"idx/{name}"] = idx
            delta = now.astype(np.float64) - init[name].ravel()
            out[f"delta_sums/{name}"] = np.array([delta.sum(), (delta**2).sum()])
        if name in grads:
            g = grads[name].numpy().ravel()
            out[f"grad/{name}"] = g[keep]
            out[f"grad_sums/{name}"] = np.array(
                [g.astype(np.float64).sum(), (g.astype(np.float64) ** 2).sum()]
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"{args.out}: loss {losses['loss']:.9g}, {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
