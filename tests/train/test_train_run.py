"""run_train on a planted-anomaly store: learning, run directory, resume, seeds, model selection."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from wsvad.detectors.checkpoint import load_detector
from wsvad.errors import WsvadError
from wsvad.train import TrainConfig, run_train


def _cfg(store, out, **extra) -> TrainConfig:
    data = {
        "store": str(store.path),
        "out": str(out),
        "iterations": 150,
        "sampler": {"batch_per_class": 6},
        "optim": {"lr": 1.0e-2},
        "bags": {"count": 8, "rule": "rtfm"},
        "score_on": "snippets",
        "checkpoint_every": 50,
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    return TrainConfig.model_validate(data)


def test_mil_learns_planted_anomalies_and_writes_the_run(planted_store, tmp_path):
    out = tmp_path / "run"
    result = run_train(_cfg(planted_store, out))
    assert result.finished and result.steps == 150
    assert result.frame_auc is not None and result.frame_auc > 0.9
    scores = np.load(out / "scores.npz")
    test_ids = [v for v in planted_store.video_ids() if v.startswith("test_")]
    assert sorted(scores.files) == test_ids
    for vid in test_ids:
        assert scores[vid].dtype == np.float32 and scores[vid].shape == (
            planted_store.array(vid).shape[0],
        )
    run = json.loads((out / "run.json").read_text())
    assert (
        run["status"] == "complete"
        and run["detector"] == "mil"
        and run["model_selection"] == "last"
    )
    assert run["quick_frame_auc"] == pytest.approx(result.frame_auc)
    assert (run["T"], run["bag_rule"], run["crop_mode"], run["snippet_len"], run["stride"]) == (
        8,
        "rtfm",
        "separate",
        16,
        16,
    )
    assert (
        run["class_names"] == ["Normal", "Planted"] and run["n_train"] == 24 and run["n_test"] == 12
    )
    saved = yaml.safe_load((out / "config.yaml").read_text())
    # The paper defaults of mil filled what the config left open; the config's lr won.
    assert saved["optim"] == {
        **saved["optim"],
        "name": "adagrad",
        "lr": 0.01,
        "weight_decay": 0.0,
        "eps": 1e-8,
        "initial_accumulator_value": 0.0,
    }
    det, meta = load_detector(out / "model")
    assert (
        meta["seed"] == 0 and meta["step"] == 150 and meta["class_names"] == ["Normal", "Planted"]
    )
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == list(range(10, 151, 10))
    assert lines[-1]["loss"] < lines[0]["loss"]
    # Scores in scores.npz are the crop average of score_video on the raw snippets.
    raw = planted_store.read(test_ids[0])
    with torch.no_grad():
        expect = np.mean(
            [det.score_video(torch.from_numpy(raw[:, c])).numpy() for c in range(raw.shape[1])],
            axis=0,
        )
    np.testing.assert_allclose(scores[test_ids[0]], expect, rtol=1e-5)


def test_training_is_deterministic_and_seeds_matter(planted_store, tmp_path):
    a = run_train(_cfg(planted_store, tmp_path / "a", iterations=30))
    b = run_train(_cfg(planted_store, tmp_path / "b", iterations=30))
    c = run_train(_cfg(planted_store, tmp_path / "c", iterations=30, seed=1))
    wa, wb, wc = (load_file(r.run_dir / "model.safetensors") for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["fc1.weight"], wc["fc1.weight"])


def test_resumed_run_equals_uninterrupted_run(planted_store, tmp_path):
    full = run_train(_cfg(planted_store, tmp_path / "full", iterations=60))
    part = run_train(_cfg(planted_store, tmp_path / "part", iterations=60), stop_after=23)
    assert not part.finished and part.steps == 23
    assert json.loads((tmp_path / "part" / "checkpoints" / "last.json").read_text())["step"] == 23
    assert not (tmp_path / "part" / "model.safetensors").exists()
    resumed = run_train(_cfg(planted_store, tmp_path / "part", iterations=60))
    assert resumed.finished and resumed.steps == 60
    wf, wr = (
        load_file(full.run_dir / "model.safetensors"),
        load_file(resumed.run_dir / "model.safetensors"),
    )
    assert wf.keys() == wr.keys() and all(torch.equal(wf[k], wr[k]) for k in wf)
    sf, sr = np.load(full.run_dir / "scores.npz"), np.load(resumed.run_dir / "scores.npz")
    assert all(np.array_equal(sf[k], sr[k]) for k in sf.files)


def test_a_kill_between_the_checkpoint_writes_resumes_from_the_previous_checkpoint(
    planted_store, tmp_path, monkeypatch
):
    """The tensors file is replaced before the JSON naming its sha256: a kill in between leaves
    the old JSON, whose tensors were kept aside, so the run resumes one checkpoint earlier and
    still ends with the weights of an uninterrupted run (CI once caught this window)."""
    import wsvad.detectors.checkpoint as checkpoint

    full = run_train(_cfg(planted_store, tmp_path / "full", iterations=60))
    run_train(_cfg(planted_store, tmp_path / "part", iterations=60), stop_after=20)
    real_write_json = checkpoint.write_json

    class Killed(BaseException):  # stands for SIGKILL between the two renames
        pass

    def killed_before_json(path, data):
        raise Killed

    monkeypatch.setattr(checkpoint, "write_json", killed_before_json)
    for _ in range(2):  # killed twice in the same window: the kept tensors must survive both
        with pytest.raises(Killed):
            run_train(_cfg(planted_store, tmp_path / "part", iterations=60), stop_after=10)
    monkeypatch.setattr(checkpoint, "write_json", real_write_json)
    last = tmp_path / "part" / "checkpoints" / "last"
    assert json.loads(last.with_suffix(".json").read_text())["step"] == 20  # the old marker
    resumed = run_train(_cfg(planted_store, tmp_path / "part", iterations=60))
    assert resumed.finished and resumed.steps == 60
    wf, wr = (
        load_file(full.run_dir / "model.safetensors"),
        load_file(resumed.run_dir / "model.safetensors"),
    )
    assert all(torch.equal(wf[k], wr[k]) for k in wf)


def test_resume_refuses_a_changed_config_and_a_finished_run(planted_store, tmp_path):
    run_train(_cfg(planted_store, tmp_path / "r", iterations=20), stop_after=5)
    with pytest.raises(
        WsvadError,
        match=r"r: an unfinished run with a different config is there \(differs in bags\)",
    ):
        run_train(_cfg(planted_store, tmp_path / "r", iterations=20, bags={"count": 4}))
    run_train(_cfg(planted_store, tmp_path / "r", iterations=20))
    with pytest.raises(
        WsvadError, match="r: holds a finished run; choose another --out or pass --overwrite"
    ):
        run_train(_cfg(planted_store, tmp_path / "r", iterations=20))
    again = run_train(_cfg(planted_store, tmp_path / "r", iterations=10), overwrite=True)
    assert again.steps == 10


def test_multi_seed_run_reports_mean_and_std(planted_store, tmp_path):
    out = tmp_path / "seeds"
    result = run_train(_cfg(planted_store, out, iterations=40, seeds=[0, 1, 2]))
    assert [m.seed for m in result.members] == [0, 1, 2]
    run = json.loads((out / "run.json").read_text())
    aucs = [r["frame_auc"] for r in run["runs"]]
    assert [r["dir"] for r in run["runs"]] == ["seed-0", "seed-1", "seed-2"]
    assert run["frame_auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert run["frame_auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    assert len(set(aucs)) > 1  # the seeds really differ
    for seed in (0, 1, 2):
        assert json.loads((out / f"seed-{seed}" / "run.json").read_text())["seed"] == seed


def test_val_selection_holds_out_training_videos(planted_store, tmp_path):
    out = tmp_path / "val"
    result = run_train(
        _cfg(
            planted_store,
            out,
            iterations=60,
            selection={"mode": "val", "val_fraction": 0.25, "every": 20},
        )
    )
    run = json.loads((out / "run.json").read_text())
    assert run["model_selection"] == "val" and run["warning"] is None
    assert (run["n_train"], run["n_val"]) == (18, 6)
    selections = [
        json.loads(line)
        for line in (out / "log.jsonl").read_text().splitlines()
        if "selection" in line
    ]
    assert [s["step"] for s in selections] == [20, 40, 60]
    best = max(selections, key=lambda s: s["score"])
    assert run["selected_step"] == result.selected_step == best["step"]
    assert run["selection_score"] == pytest.approx(best["score"])
    assert json.loads((out / "model.json").read_text())["step"] == best["step"]


def test_test_best_selection_is_recorded_and_flagged(planted_store, tmp_path):
    out = tmp_path / "tb"
    result = run_train(
        _cfg(planted_store, out, iterations=40, selection={"mode": "test-best", "every": 20})
    )
    run = json.loads((out / "run.json").read_text())
    assert run["model_selection"] == "test-best" and "TEST set" in run["warning"]
    assert result.warning == run["warning"]
    assert json.loads((out / "model.json").read_text())["selection"] == "test-best"


def test_mil_paper_defaults_sultani_bags_scored_on_bags(planted_store, tmp_path):
    out = tmp_path / "sultani"
    # rule and score_on left open: mil's train_defaults (Sultani's protocol) fill them
    result = run_train(
        _cfg(
            planted_store, out, iterations=100, bags={"rule": None}, score_on=None, crop_mode="mean"
        )
    )
    assert result.frame_auc > 0.85
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["bags"]["rule"], saved["score_on"], saved["crop_mode"]) == (
        "sultani",
        "bags",
        "mean",
    )
    scores = np.load(out / "scores.npz")
    vid = scores.files[0]
    # Bag scores mapped back to snippets: at most T = 8 distinct values per video.
    assert (
        len(np.unique(scores[vid])) <= 8 and len(scores[vid]) == planted_store.array(vid).shape[0]
    )
    # crops averaged before the bags are cut and normalised (#15.4): the crop-mean cache
    assert (planted_store.path / "bags" / "sultani-mean-T8-float32-cropmean").is_dir()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"detector": {"name": "nope"}}, "--detector: unknown detector 'nope'; known: "),
        ({"selection": {"mode": "val", "val_fraction": 0.01}}, None),
        (
            {"detector": {"name": "mil", "params": {"hidden": 3}}},
            "detector mil params: hidden: unknown key",
        ),
    ],
)
def test_bad_detector_is_named(planted_store, tmp_path, extra, message):
    cfg = _cfg(planted_store, tmp_path / "x", iterations=5, **extra)
    if message is None:  # a tiny fraction still holds out one video per label
        assert run_train(cfg).finished
    else:
        with pytest.raises(WsvadError, match=message):
            run_train(cfg)


def test_only_normal_training_videos_is_a_clear_error(make_planted_store, tmp_path):
    store = make_planted_store("s", n_train=2, n_test=1)
    for vid in store.video_ids():
        if vid.startswith("train_abnormal"):
            store.delete_video(vid)
    with pytest.raises(
        WsvadError,
        match="s: the training split has only normal videos; the balanced sampler needs both",
    ):
        run_train(_cfg(store, tmp_path / "run", iterations=5))


def test_wrong_feature_rank_is_refused(tmp_path):
    from wsvad.pipeline.store import FeatureStore

    store = FeatureStore.create(
        tmp_path / "s7",
        {
            "feature_shape": [7, 8],
            "dtype": "float32",
            "crops": 1,
            "backbone": "x",
            "config_hash": "h",
        },
    )
    store.write_video("a", np.zeros((3, 1, 7, 8), dtype=np.float32), {"split": "train", "label": 0})
    with pytest.raises(
        WsvadError,
        match=(
            r"s7: detector 'mil' needs 1-D per-snippet features, the store has feature_shape "
            r"\[7, 8\]"
        ),
    ):
        run_train(_cfg(store, tmp_path / "run", iterations=5))


def test_interrupted_run_keeps_its_steps_and_resumes_to_the_same_weights(planted_store, tmp_path):
    full = run_train(_cfg(planted_store, tmp_path / "full", iterations=40, checkpoint_every=15))

    def interrupt(step, total, logged):
        if step == 22:  # between two periodic checkpoints (15, 30)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_train(
            _cfg(planted_store, tmp_path / "cut", iterations=40, checkpoint_every=15),
            progress=interrupt,
        )
    assert json.loads((tmp_path / "cut" / "checkpoints" / "last.json").read_text())["step"] == 22
    resumed = run_train(_cfg(planted_store, tmp_path / "cut", iterations=40, checkpoint_every=15))
    wf, wr = (
        load_file(full.run_dir / "model.safetensors"),
        load_file(resumed.run_dir / "model.safetensors"),
    )
    assert all(torch.equal(wf[k], wr[k]) for k in wf)
