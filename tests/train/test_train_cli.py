"""``wsvad train`` end to end on a tiny planted store (in-process through wsvad.cli.run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from wsvad.cli import run
from wsvad.data import DatasetIndex, VideoRecord, register_dataset
from wsvad.data.registry import _REGISTRY
from wsvad.errors import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL

FAST = [
    "--iterations",
    "60",
    "--set",
    "sampler.batch_per_class=6",
    "--set",
    "bags.count=8",
    "--set",
    "optim.lr=0.01",
]


def test_cli_trains_and_prints_the_quick_auc(planted_store, tmp_path, capsys):
    out = tmp_path / "run"
    code = run(
        [
            "train",
            "--store",
            str(planted_store.path),
            "--out",
            str(out),
            "--detector",
            "mil",
            "--seed",
            "0",
            *FAST,
        ]
    )
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    auc = json.loads((out / "run.json").read_text())["quick_frame_auc"]
    assert f"{out}: seed 0, 60 steps, quick frame AUC (test) {auc:.4f}" in captured.out
    assert auc > 0.9
    for name in (
        "config.yaml",
        "run.json",
        "model.safetensors",
        "model.json",
        "log.jsonl",
        "scores.npz",
        "checkpoints/last.safetensors",
        "checkpoints/last.json",
    ):
        assert (out / name).is_file(), name
    assert len(np.load(out / "scores.npz").files) == 12


def test_cli_precision_reaches_the_run_and_is_said(planted_store, tmp_path, capsys, monkeypatch):
    from wsvad.extract import precision

    monkeypatch.setattr(precision, "native_bf16", lambda: "AVX512-BF16")
    out = tmp_path / "bf16"
    args = ["train", "--store", str(planted_store.path), "--out", str(out), "--precision", "bf16"]
    code = run([*args, *FAST])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert f"{out}: precision bf16 on cpu (native bf16: AVX512-BF16)\n" in captured.err
    assert "precision: bf16" in (out / "config.yaml").read_text()


def test_cli_test_best_is_flagged_next_to_the_figure(planted_store, tmp_path, capsys):
    code = run(
        [
            "train",
            "--store",
            str(planted_store.path),
            "--out",
            str(tmp_path / "tb"),
            "--selection",
            "test-best",
            *FAST,
        ]
    )
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert (
        "quick frame AUC (test)" in out
        and "[model selected on the TEST set (test-best): optimistic" in out
    )


def test_cli_flags_a_collapsed_training_next_to_the_figure(planted_store, tmp_path, capsys):
    # Adagrad at lr 10 saturates MIL's sigmoid within a few steps: every score becomes 0.
    out = tmp_path / "collapsed"
    code = run(
        [
            "train",
            "--store",
            str(planted_store.path),
            "--out",
            str(out),
            "--iterations",
            "30",
            "--set",
            "sampler.batch_per_class=4",
            "--set",
            "optim.lr=10.0",
        ]
    )
    text = capsys.readouterr().out
    assert code == EXIT_OK
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["quick_frame_auc"] == 0.5
    assert run_json["collapse"].startswith(
        "training collapsed: every test score is 0 (spread 0.0e+00 over "
    )
    assert run_json["warning"] == run_json["collapse"]
    assert "quick frame AUC (test) 0.5000  [training collapsed: every test score is 0" in text
    assert "lower optim.lr or check the features]" in text
    # evaluate repeats it next to its figures and keeps it in metrics.json
    assert run(["evaluate", "--run", str(out), "--no-plots"]) == EXIT_OK
    assert f"warning: {run_json['collapse']}" in capsys.readouterr().err
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["source"]["training_collapse"] == run_json["collapse"]


def test_cli_seeds_report_mean_and_std(planted_store, tmp_path, capsys):
    out = tmp_path / "seeds"
    code = run(
        ["train", "--store", str(planted_store.path), "--out", str(out), "--seeds", "0,1", *FAST]
    )
    text = capsys.readouterr().out
    assert code == EXIT_OK
    summary = json.loads((out / "run.json").read_text())["frame_auc"]
    assert f"frame AUC over 2 seeds {summary['mean']:.4f} ± {summary['std']:.4f}" in text
    assert (out / "seed-0" / "model.safetensors").is_file() and (
        out / "seed-1" / "model.safetensors"
    ).is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--store", "{tmp}/missing", "--out", "{tmp}/r"],
            "error: {tmp}/missing: no such feature store",
        ),
        (["--out", "{tmp}/r"], "error: missing --store (give it on the command line"),
        (
            ["--store", "{store}", "--out", "{tmp}/r", "--seeds", "0,x"],
            "error: --seeds '0,x': expected comma-separated integers",
        ),
        (
            ["--store", "{store}", "--out", "{tmp}/r", "--selection", "best"],
            "error: command line: selection.mode: should be 'last', 'val' or 'test-best' "
            "(got 'best')",
        ),
        (
            ["--store", "{store}", "--out", "{tmp}/r", "--set", "bags.count=0"],
            "error: command line: bags.count: should be greater than or equal to 1 (got 0)",
        ),
        (
            ["--store", "{store}", "--out", "{tmp}/r", "--detector", "nope"],
            "Invalid value for '--detector': 'nope' is not one of claws, dam, joint, mil, rtfm,",
        ),
        (
            ["--store", "{store}", "--out", "{tmp}/r", "--precision", "fp16"],
            "Invalid value for '--precision': 'fp16' is not one of fp32, bf16",
        ),
    ],
)
def test_cli_errors_are_one_line(planted_store, tmp_path, capsys, args, message):
    filled = [a.format(tmp=tmp_path, store=planted_store.path) for a in args]
    # bad usage (a missing or invalid option) is 2, as click's own usage errors
    usage = message.startswith(("error: missing", "Invalid value"))
    assert run(["train", *filled]) == (2 if usage else EXIT_ERROR)
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err
    assert "Traceback" not in err


_ADAPTER = "planted_cli_test"


def _planted_adapter(root: Path, **_options) -> DatasetIndex:
    """Labels for the planted store, minus one store video, plus one video that was never
    extracted."""
    records = []
    for line in (root / "labels.txt").read_text().splitlines():
        vid, split, label = line.split()
        intervals = (
            ((0, 16),) if split == "test" and label == "1" else (() if split == "test" else None)
        )
        records.append(
            VideoRecord(
                vid,
                root / vid,
                vid,
                split,
                int(label),
                ("Planted",) if label == "1" else (),
                intervals,
            )
        )
    return DatasetIndex(_ADAPTER, root, records, class_names=["Normal", "Planted"])


@pytest.fixture
def planted_adapter():
    """Register the test adapter for one test only: other tests list the real adapters."""
    register_dataset(_ADAPTER, summary="test adapter", layout="labels.txt")(_planted_adapter)
    yield _ADAPTER
    _REGISTRY.pop(_ADAPTER, None)


def test_cli_labels_from_a_dataset_with_unmatched_ids(
    planted_store, planted_adapter, tmp_path, capsys
):
    root = tmp_path / "dataset"
    root.mkdir()
    lines = []
    for vid in planted_store.video_ids():
        if vid == "train_normal_00":
            continue  # in the store, unknown to the dataset
        attrs = planted_store.video_attrs(vid)
        lines.append(f"{vid} {attrs['split']} {attrs['label']}")
    lines.append("never_extracted train 1")
    (root / "labels.txt").write_text("\n".join(lines))
    out = tmp_path / "run"
    code = run(
        [
            "train",
            "--store",
            str(planted_store.path),
            "--dataset",
            _ADAPTER,
            "--root",
            str(root),
            "--out",
            str(out),
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert code == EXIT_PARTIAL
    assert "in store, not in dataset (ignored)" in err and "train_normal_00" in err
    assert "in dataset, not in store (missing)" in err and "never_extracted" in err
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["labels_from"] == f"dataset {_ADAPTER} at {root}" and run_json["n_train"] == 23
    assert run_json["unmatched"]["not_in_store"] == ["never_extracted"]
