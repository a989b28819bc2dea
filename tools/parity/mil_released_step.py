"""Golden figures of TWO training steps of Sultani et al.'s released MIL recipe, computed by hand.

The released code (github.com/WaqasSultani/AnomalyDetectionCVPR2018 @ 8aa957cd,
``TrainingAnomalyDetector_public.py``) is Python 2 + Keras 1 + Theano with a CUDA sandbox; it does
not run on this machine. This script transcribes it into float64 numpy instead, read, not copied:

- the model: Dense 512 ReLU, Dropout 0.6, Dense 32 (linear), Dropout 0.6, Dense 1 sigmoid; Keras 1
  ``glorot_normal`` kernels (normal, std sqrt(2 / (fan_in + fan_out))), zero biases;
- ``custom_objective`` as its Theano graph computes it, with the batch laid out as the code loads
  it (30 abnormal videos, then 30 normal, 32 segments each): per video the max, the sum and the
  squared successive differences of the segment scores (``z_22 - z_44``); for each normal video i,
  ``sum_j max(1 - max_abn_j + max_nor_i, 0)`` over the 30 abnormal videos j; the mean of those
  over i, ``+ 0.00008 * sum`` of the abnormal videos' score sums and squared differences;
- Keras 1 adds each ``W_regularizer=l2(0.001)`` as ``0.001 * sum(W^2)`` of the kernel;
- gradients by hand-written backpropagation through that graph (``--tf-check`` recomputes them by
  TensorFlow autodiff from the same transcription and records the largest difference);
- Keras 1 ``Adagrad(lr=0.01, epsilon=1e-08)``: accumulators start at 0, ``a += g^2``,
  ``p -= lr * g / (sqrt(a) + eps)``.

Two steps on the same seeded batch with fresh dropout masks, so the second step depends on the
accumulated squares (a first Adagrad step is ``lr * sign(g)`` and would hide gradient sizes).
Features are D = 32 (the equations do not depend on D; the code uses C3D's 4096), non-negative
and L2-normalised per segment like the authors' 32-segment features. Inputs, initial weights and
masks come from numpy generators defined here; tests/detectors/test_mil_parity.py rebuilds them
from this file (numpy only) and checks their sha256.

    /work/tfvenv/bin/python tools/parity/mil_released_step.py --tf-check \\
        --out tests/detectors/data/mil_step.npz
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

SEED = 0
N_EXP, T, D = 30, 32, 32  # abnormal (and normal) videos per batch, segments, feature dim
H1, H2 = 512, 32
DROPOUT = 0.6
LAMBDA = 0.00008  # custom_objective's smoothness and sparsity weight
L2 = 0.001  # W_regularizer=l2(0.001)
LR, EPS = 0.01, 1e-8  # Adagrad(lr=0.01, epsilon=1e-08)
STEPS = 2


def make_inputs(seed: int = SEED) -> np.ndarray:
    """``(60, 32, D)`` float32 in the code's layout: 30 abnormal videos, then 30 normal; each
    segment non-negative and L2-normalised; abnormal videos have 3 segments of a different
    pattern."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(0.6, 0.5, size=(2 * N_EXP, T, D))
    for v in range(N_EXP):
        start = int(rng.integers(0, T - 3))
        x[v, start : start + 3, : D // 4] += 2.0
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x.astype(np.float32)


def make_initial_weights(seed: int = SEED + 1) -> dict[str, np.ndarray]:
    """Keras 1 glorot_normal kernels ``(in, out)`` and zero biases, float32."""
    rng = np.random.default_rng(seed)
    weights = {}
    for k, (n_in, n_out) in enumerate([(D, H1), (H1, H2), (H2, 1)], start=1):
        std = np.sqrt(2.0 / (n_in + n_out))
        weights[f"W{k}"] = (std * rng.standard_normal((n_in, n_out))).astype(np.float32)
        weights[f"b{k}"] = np.zeros(n_out, np.float32)
    return weights


def make_masks(seed: int = SEED + 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per step, the keep-masks (bool) of the two Dropout layers: ``(60, 32, 512)``,
    ``(60, 32, 32)``, in the code's video order."""
    rng = np.random.default_rng(seed)
    return [
        (rng.random((2 * N_EXP, T, H1)) >= DROPOUT, rng.random((2 * N_EXP, T, H2)) >= DROPOUT)
        for _ in range(STEPS)
    ]


def sha256_arrays(arrays) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def forward(w, x, masks):
    """Scores ``(60, 32)`` and the activations backpropagation needs (float64)."""
    keep = 1.0 / (1.0 - DROPOUT)
    pre1 = x @ w["W1"] + w["b1"]
    h1 = np.maximum(pre1, 0.0) * masks[0] * keep
    h2 = (h1 @ w["W2"] + w["b2"]) * masks[1] * keep
    s = 1.0 / (1.0 + np.exp(-(h2 @ w["W3"] + w["b3"])))[..., 0]
    return s, (pre1, h1, h2)


def objective(w, s):
    """custom_objective + the l2 kernel penalties; returns (total, hinge mean, l1 sum, l2 sum)."""
    abn, nor = s[:N_EXP], s[N_EXP:]
    hinge = np.maximum(1.0 - abn.max(1)[None, :] + nor.max(1)[:, None], 0.0).sum(1).mean()
    l1 = abn.sum()
    smooth = ((abn[:, :-1] - abn[:, 1:]) ** 2).sum()
    penalty = L2 * sum((w[f"W{k}"] ** 2).sum() for k in (1, 2, 3))
    return hinge + LAMBDA * l1 + LAMBDA * smooth + penalty, hinge, l1, smooth


def score_gradient(s):
    """dL/ds ``(60, 32)`` of the objective (Theano's max passes the gradient to the argmax)."""
    abn, nor = s[:N_EXP], s[N_EXP:]
    active = (1.0 - abn.max(1)[None, :] + nor.max(1)[:, None]) > 0  # (normal i, abnormal j)
    ds = np.zeros_like(s)
    rows = np.arange(N_EXP)
    ds[rows, abn.argmax(1)] -= active.sum(0) / N_EXP
    ds[N_EXP + rows, nor.argmax(1)] += active.sum(1) / N_EXP
    diff = abn[:, :-1] - abn[:, 1:]  # d/ds of sum (s_t - s_{t+1})^2
    ds[:N_EXP, :-1] += LAMBDA * 2 * diff
    ds[:N_EXP, 1:] -= LAMBDA * 2 * diff
    ds[:N_EXP] += LAMBDA
    return ds


def gradients(w, x, masks):
    """Loss terms and dL/dparameter by hand-written backpropagation."""
    s, (pre1, h1, h2) = forward(w, x, masks)
    keep = 1.0 / (1.0 - DROPOUT)
    dz3 = (score_gradient(s) * s * (1.0 - s))[..., None]  # through the sigmoid
    g = {"W3": np.einsum("vti,vto->io", h2, dz3), "b3": dz3.sum((0, 1))}
    dh2 = (dz3 @ w["W3"].T) * masks[1] * keep
    g["W2"], g["b2"] = np.einsum("vti,vto->io", h1, dh2), dh2.sum((0, 1))
    dh1 = (dh2 @ w["W2"].T) * masks[0] * keep * (pre1 > 0)
    g["W1"], g["b1"] = np.einsum("vti,vto->io", x, dh1), dh1.sum((0, 1))
    for k in (1, 2, 3):
        g[f"W{k}"] = g[f"W{k}"] + 2 * L2 * w[f"W{k}"]
    return objective(w, s), g


def tf_gradients(w, x, masks):
    """The same objective by TensorFlow autodiff, the smoothness written as the Theano code does
    (``z_22 - z_44`` of two concatenations); returns (loss, gradients)."""
    import tensorflow as tf

    tw = {k: tf.Variable(v, dtype=tf.float64) for k, v in w.items()}
    keep = 1.0 / (1.0 - DROPOUT)
    with tf.GradientTape() as tape:
        h1 = tf.nn.relu(x @ tw["W1"] + tw["b1"]) * masks[0] * keep
        h2 = (h1 @ tw["W2"] + tw["b2"]) * masks[1] * keep
        y = tf.reshape(tf.sigmoid(h2 @ tw["W3"] + tw["b3"]), [-1])  # flattened, as y_pred
        maxes, sums, smooth = [], [], []
        for ii in range(2 * N_EXP):
            f = y[ii * T : ii * T + T]
            maxes.append(tf.reduce_max(f))
            sums.append(tf.reduce_sum(f))
            z1 = tf.ones_like(f)
            z = tf.concat([z1, f], 0)[31:] - tf.concat([f, z1], 0)[:33]
            smooth.append(tf.reduce_sum(tf.square(z[1:32])))
        sub_abn, sub_nor = tf.stack(maxes[:N_EXP]), tf.stack(maxes[N_EXP:])
        z = [tf.reduce_sum(tf.maximum(1 - sub_abn + sub_nor[i], 0)) for i in range(N_EXP)]
        loss = tf.reduce_mean(tf.stack(z)) + LAMBDA * tf.add_n(sums[:N_EXP])
        loss += LAMBDA * tf.add_n(smooth[:N_EXP])
        loss += L2 * tf.add_n([tf.reduce_sum(tf.square(tw[f"W{k}"])) for k in (1, 2, 3)])
    grads = tape.gradient(loss, tw)
    return float(loss), {k: v.numpy() for k, v in grads.items()}


def run(tf_check: bool) -> dict[str, np.ndarray]:
    x = make_inputs().astype(np.float64)
    w = {k: v.astype(np.float64) for k, v in make_initial_weights().items()}
    acc = {k: np.zeros_like(v) for k, v in w.items()}  # Keras 1: K.zeros
    out: dict[str, np.ndarray] = {}
    tf_diff = 0.0
    for step, masks in enumerate(make_masks()):
        (loss, hinge, l1, smooth), g = gradients(w, x, masks)
        if tf_check:
            tf_loss, tf_g = tf_gradients(w, x, masks)
            tf_diff = max(
                tf_diff,
                abs(tf_loss - loss) / abs(loss),
                *(np.abs(tf_g[k] - g[k]).max() / np.abs(g[k]).max() for k in g),
            )
        out[f"step{step}/terms"] = np.array([loss, hinge, l1, smooth])
        for k in w:
            acc[k] = acc[k] + g[k] ** 2
            w[k] = w[k] - LR * g[k] / (np.sqrt(acc[k]) + EPS)
            out[f"step{step}/grad/{k}"] = g[k].astype(np.float32)
            out[f"step{step}/after/{k}"] = w[k].astype(np.float32)
    out["tf_max_rel_diff"] = np.float64(tf_diff if tf_check else np.nan)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tf-check", action="store_true", help="compare with TF autodiff")
    args = parser.parse_args()
    out = run(args.tf_check)
    out["inputs_sha256"] = np.array(sha256_arrays([make_inputs()]))
    init = make_initial_weights()
    out["init_sha256"] = np.array(sha256_arrays([init[k] for k in sorted(init)]))
    out["masks_sha256"] = np.array(sha256_arrays([m for pair in make_masks() for m in pair]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    terms, tf_diff = out["step0/terms"], float(out["tf_max_rel_diff"])
    print(
        f"{args.out}: step-0 loss {terms[0]:.12g} (hinge {terms[1]:.6g}), step-1 loss "
        f"{out['step1/terms'][0]:.12g}, TF autodiff max rel diff {tf_diff:.2e}, "
        f"{args.out.stat().st_size / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
