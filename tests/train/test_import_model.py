"""``wsvad import-model --format rtfm``: a public RTFM checkpoint becomes a run that evaluate and
score use like a trained one; wrong files are refused with the mismatch listed."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from wsvad.cli import run as cli
from wsvad.detectors import build_detector
from wsvad.detectors.checkpoint import load_detector
from wsvad.detectors.rtfm import PUBLIC_CODE_PREFIXES

# The public code's Model(n_features, batch_size): 47 state-dict entries, named as its model.py
# builds them (tests/detectors/test_rtfm_parity.py loads the real code's names and shapes, D = 2048,
# through the same mapping). The public Model is 2048-d; these tests use D = 16 to stay fast: the
# mapping is by name, the shapes are checked against the detector the store needs.
N_PUBLIC_KEYS = 47
D = 16


def _public_checkpoint(seed: int = 0, dim: int = D) -> dict[str, torch.Tensor]:
    """A state dict named as the public code saves it: a wsvad RTFM's weights under the public
    names (the inverse of PUBLIC_CODE_PREFIXES), BatchNorm statistics made non-trivial."""
    torch.manual_seed(seed)
    det = build_detector("rtfm", (dim,), {"non_local_zero_init": False})
    public = {}
    for key, value in det.state_dict().items():
        theirs, ours = next((t, o) for t, o in PUBLIC_CODE_PREFIXES if key.startswith(o))
        if key.endswith("running_var"):
            value = torch.rand_like(value) + 0.5
        elif key.endswith("running_mean"):
            value = torch.randn_like(value) * 0.1
        public[theirs + key[len(ours) :]] = value
    return public


def _store(make_planted_store):
    return make_planted_store(
        "rtfm", feature_shape=(D,), crops=2, n_train=1, n_test=2, snippets=(20, 28)
    )


def test_import_model_writes_a_run_that_evaluate_uses(make_planted_store, tmp_path):
    store = _store(make_planted_store)
    weights = tmp_path / "rtfm_final.pkl"
    public = _public_checkpoint()
    assert len(public) == N_PUBLIC_KEYS
    torch.save(public, weights)
    out = tmp_path / "run"
    code = cli(
        ["import-model", "--format", "rtfm", "--weights", str(weights), "--store", str(store.path)]
        + ["--out", str(out)]
    )
    assert code == 0
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["detector"] == "rtfm" and run["steps"] == 0
    assert run["imported"]["format"] == "rtfm" and len(run["imported"]["weights_sha256"]) == 64
    assert run["n_test"] == 4
    det, meta = load_detector(out / "model")
    assert meta["imported"] == run["imported"]
    # the weights are the file's, under the mapped names
    assert torch.equal(det.mtn.fuse[0].weight, public["Aggregate.conv_5.0.weight"])
    assert torch.equal(
        det.mtn.non_local.out[1].running_var, public["Aggregate.non_local.W.1.running_var"]
    )
    # scores.npz holds the test videos scored as train scores them (crop average, eval mode)
    scores = np.load(out / "scores.npz")
    test_ids = sorted(v for v in store.video_ids() if v.startswith("test_"))
    assert sorted(scores.files) == test_ids
    raw = store.read(test_ids[0])
    det.eval()
    with torch.no_grad():
        expect = np.mean(
            [det.score_video(torch.from_numpy(raw[:, c])).numpy() for c in range(raw.shape[1])],
            axis=0,
        )
    assert np.allclose(scores[test_ids[0]], expect, atol=1e-6)
    # wsvad score uses the run like a trained one: a stored test video scores as scores.npz says
    score_out = tmp_path / "score"
    argv = ["score", test_ids[0], "--run", str(out), "--from-store", "--out", str(score_out)]
    assert cli(argv) == 0
    rows = np.loadtxt(score_out / "snippet_scores.csv", delimiter=",", skiprows=1, ndmin=2)
    assert np.allclose(rows[:, 3], scores[test_ids[0]], rtol=0, atol=1e-6)  # CSV: 6 decimals
    assert cli(["evaluate", "--run", str(out), "--no-plots", "--no-report"]) == 0
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["coverage"]["matched"] == 4 and metrics["source"]["detector"] == "rtfm"
    assert metrics["metrics"]["auc"] == pytest.approx(run["quick_frame_auc"], abs=1e-9)


def test_wrong_keys_and_shapes_are_listed(make_planted_store, tmp_path, capsys):
    store = _store(make_planted_store)
    public = _public_checkpoint()
    public["Aggregate.conv_6.0.weight"] = torch.zeros(3)
    del public["fc3.bias"]
    public["fc1.weight"] = torch.zeros(512, 8)
    weights = tmp_path / "bad.pkl"
    torch.save(public, weights)
    out = tmp_path / "run"
    argv = ["import-model", "--format", "rtfm", "--weights", str(weights)]
    assert cli(argv + ["--store", str(store.path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{weights}: not a public RTFM Model state dict" in err
    assert "unexpected keys: Aggregate.conv_6.0.weight" in err
    assert "missing keys: fc3.bias" in err
    assert f"wrong shapes: fc1.weight (512, 8) (model fc1.weight (512, {D}))" in err
    assert not out.exists()  # refused before anything is written


def test_a_checkpoint_that_would_run_code_is_refused(make_planted_store, tmp_path, capsys):
    store = _store(make_planted_store)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    weights = tmp_path / "evil.pkl"
    weights.write_bytes(pickle.dumps({"fc1.weight": Evil()}, protocol=2))
    argv = ["import-model", "--format", "rtfm", "--weights", str(weights)]
    assert cli(argv + ["--store", str(store.path), "--out", str(tmp_path / "r")]) == 1
    captured = capsys.readouterr()
    assert "pwned" not in captured.out
    assert f"{weights}: not a state dict that loads safely (weights_only)" in captured.err


def test_a_store_of_another_width_is_refused_with_the_shapes(make_planted_store, tmp_path, capsys):
    store = make_planted_store("w8", feature_shape=(8,), n_train=1, n_test=1)
    weights = tmp_path / "rtfm.pkl"
    torch.save(_public_checkpoint(), weights)
    argv = ["import-model", "--format", "rtfm", "--weights", str(weights)]
    assert cli(argv + ["--store", str(store.path), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert f"wrong shapes: Aggregate.conv_1.0.weight (512, {D}, 3)" in err
    assert "(model mtn.dilated.0.0.weight (512, 8, 3))" in err


def test_unknown_format_is_refused(make_planted_store, tmp_path, capsys):
    store = _store(make_planted_store)
    weights = tmp_path / "w.pkl"
    torch.save({}, weights)
    argv = ["import-model", "--format", "mgfn", "--weights", str(weights)]
    assert cli(argv + ["--store", str(store.path), "--out", str(tmp_path / "r")]) == 1
    assert "--format 'mgfn': expected one of rtfm" in capsys.readouterr().err
