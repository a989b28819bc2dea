"""Conventions every `wsvad` command shares: --debug in both positions, one exit-code convention,
one help style, one default for each batch-job option."""

from __future__ import annotations

import inspect
import re

import pytest
import typer
from typer.testing import CliRunner

from wsvad.cli import app, run
from wsvad.errors import WsvadError
from wsvad.pipeline.jobqueue import JobQueueConfig

COMMANDS = typer.main.get_command(app).commands


def _options(command_name: str):
    return [p for p in COMMANDS[command_name].params if p.param_type_name == "option"]


def test_help_lists_the_commands_in_pipeline_order():
    assert list(COMMANDS) == [
        "datasets",
        "check",
        "synth",
        "extract",
        "info",
        "backbones",
        "detectors",
        "train",
        "import-model",
        "evaluate",
        "compare",
        "score",
        "report",
        "import",
        "export",
        "concat",
        "slurm-script",
    ]


@pytest.mark.parametrize("position", ["after", "before"])
def test_debug_works_before_and_after_the_sub_command(tmp_path, capsys, position):
    args = ["train", "--store", str(tmp_path / "nope"), "--out", str(tmp_path / "run")]
    assert run(args) == 1  # without --debug: one line, no traceback
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope'}: no such feature store"
    with_debug = [*args, "--debug"] if position == "after" else ["--debug", *args]
    with pytest.raises(WsvadError, match="no such feature store"):  # --debug: the traceback
        run(with_debug)


def test_debug_after_the_sub_command_is_not_taken_after_double_dash(tmp_path, capsys):
    # After `--` every token is an argument: `info -- --debug` describes a store named --debug.
    assert run(["info", "--", "--debug"]) == 1
    assert capsys.readouterr().err == "error: --debug: no such feature store\n"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_documents_debug_in_its_help(name):
    debug = [p for p in _options(name) if p.opts == ["--debug"]]
    assert len(debug) == 1 and debug[0].is_flag
    assert debug[0].help == (
        "Show full tracebacks instead of one-line errors (before or after the command). "
        "Default: off."
    )


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_commands_return_none_and_report_other_outcomes_with_typer_exit(name):
    # The exit-code convention of wsvad/cli/__init__.py: a returned int would be ignored when
    # typer runs standalone, so no command returns one.
    assert inspect.signature(COMMANDS[name].callback).return_annotation in (None, "None")


def test_an_exit_code_is_the_same_standalone_and_through_run(tmp_path):
    # A UCF layout whose listed videos are all missing: `wsvad check` finds errors, exits 1.
    (tmp_path / "Anomaly_Train.txt").write_text("Abuse/Abuse001_x264.mp4\n")
    (tmp_path / "Anomaly_Test.txt").write_text("Abuse/Abuse028_x264.mp4\n")
    (tmp_path / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "Abuse028_x264.mp4  Abuse  5  20  -1  -1\n"
    )
    args = ["check", "--dataset", "ucf", "--root", str(tmp_path), "--probe", "none"]
    assert run(args) == 1
    standalone = CliRunner().invoke(app, args)
    assert standalone.exit_code == 1, standalone.output
    clean = CliRunner().invoke(app, ["datasets"])
    assert clean.exit_code == 0 and run(["datasets"]) == 0


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_texts_say_the_default_once(name):
    for option in _options(name):
        text = option.help or ""
        assert text.endswith("."), (name, option.opts, text)
        defaults = text.count("Default:")
        assert defaults == 1 or (defaults == 0 and "Required" in text), (name, option.opts, text)
        assert not re.search(r"\bNone\b", text), (name, option.opts, text)
        assert not option.show_default or option.default in (None, False), (name, option.opts)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_renders_without_a_second_default(name, capsys):
    assert run([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--debug" in out and "[default:" not in out


def test_batch_jobs_default_to_4_cores_and_16gb_in_both_commands():
    model = JobQueueConfig()
    assert (model.cores, model.memory, model.gpus, model.walltime) == (4, "16GB", 0, "04:00:00")
    for name in ("extract", "slurm-script"):
        helps = {p.opts[0]: p.help for p in _options(name)}
        assert helps["--cores"].endswith("Default: 4.")
        assert helps["--memory"].endswith("Default: 16GB.")
        assert helps["--walltime"].endswith("Default: 04:00:00.")


def test_slurm_script_takes_the_model_defaults(tmp_path, capsys):
    script = tmp_path / "a.sh"
    args = ["slurm-script", "--root", str(tmp_path), "--out", str(tmp_path / "s")]
    assert run([*args, "--script", str(script)]) == 0
    text = script.read_text()
    assert "#SBATCH --cpus-per-task=4\n" in text and "#SBATCH --mem=15258M\n" in text  # 16 GB
    assert "--threads-per-worker 4 " in text and "#SBATCH --time=04:00:00\n" in text
    assert "--gres" not in text
    assert run([*args, "--script", str(script), "--cores", "6", "--memory", "8G"]) == 0
    text = script.read_text()
    assert "#SBATCH --cpus-per-task=6\n" in text and "#SBATCH --mem=8192M\n" in text
