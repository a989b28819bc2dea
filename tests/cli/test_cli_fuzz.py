"""The command line under fuzzing: hypothesis drives every ``wsvad`` sub-command with random option
values and hostile paths (nonexistent, unreadable, non-UTF-8, very long, a file for a folder and a
folder for a file, garbage files, real inputs). Every run must end with exit 0, 1, 2 or 3, print
no traceback (nor the "run with --debug for the traceback" line of an unexpected exception), and
write nothing outside the output paths it was given (checked over a sandbox of inputs, the working
directory and $HOME; caches under $XDG_CACHE_HOME and $WSVAD_CACHE_DIR are allowed).

The default run tries a few examples (< 30 s); ``-m slow`` tries many.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsvad.cli import run

# Every exit code of the CLI convention (/work/shared/design/cli.md) except 130 (Ctrl-C)
EXIT_CODES = {0, 1, 2, 3}
# Documented default outputs in the working directory, written when no path is given for them
DEFAULT_OUTPUTS = {"slurm-script": ["extract-array.sh"]}


class Sandbox:
    """Inputs (never to be written), an output folder per example, and the hostile paths."""

    def __init__(self, root: Path, store: Path, video: Path):
        self.root, self.inputs, self.outputs = root, root / "inputs", root / "outputs"
        self.outputs.mkdir(parents=True)
        inputs = self.inputs
        (inputs / "videos").mkdir(parents=True)
        shutil.copy(video, inputs / "videos" / "a.mp4")
        shutil.copy(video, inputs / "videos" / "b.mp4")
        shutil.copytree(store, inputs / "store")
        (inputs / "empty").write_bytes(b"")
        (inputs / "garbage.bin").write_bytes(bytes(range(256)) * 8)
        (inputs / "config.yaml").write_text("{}\n")
        (inputs / "bad.yaml").write_text("a: [1, 2\n  b: {")
        (inputs / "list.txt").write_text("a.mp4\nb.mp4\n../../etc/passwd\n")
        (inputs / "scores.npz").write_bytes(b"PK\x03\x04 not a zip")
        (inputs / "fake_run").mkdir()
        (inputs / "fake_run" / "run.json").write_text('{"status": "complete", "store": 3}')
        (inputs / "fake_run" / "model.json").write_text("[]")
        unreadable = inputs / "unreadable.yaml"
        unreadable.write_text("seed: 1\n")
        unreadable.chmod(0)  # root still reads it; other users get EACCES
        self.non_utf8 = Path(os.fsdecode(bytes(inputs) + b"/caf\xe9-\xff.mp4"))
        shutil.copy(video, self.non_utf8)
        self.paths = [
            str(inputs / "store"),
            str(inputs / "videos"),
            str(inputs / "videos" / "a.mp4"),
            str(inputs / "config.yaml"),
            str(inputs / "bad.yaml"),
            str(inputs / "list.txt"),
            str(inputs / "scores.npz"),
            str(inputs / "fake_run"),
            str(inputs / "empty"),
            str(inputs / "garbage.bin"),
            str(unreadable),
            str(self.non_utf8),
            os.fsdecode(bytes(inputs) + b"/missing-\xfe\xfd"),  # non-UTF-8 and nonexistent
            str(inputs / "does" / "not" / "exist"),
            str(inputs / ("n" * 300)),  # a name longer than 255 bytes
            str(inputs / "/".join(["deep" * 50] * 25)),  # a path longer than PATH_MAX
            str(inputs / "videos" / "a.mp4" / "below_a_file"),
            "",
            "-",
            "~",
        ]

    def snapshot(self, example_out: Path) -> dict[str, tuple]:
        """Every file and folder of the sandbox (but the example's outputs and the caches), the
        working directory and $HOME, with what would show a write."""
        seen: dict[str, tuple] = {}
        for top in (self.root, Path.cwd(), Path(os.environ["HOME"])):
            for dirpath, dirnames, filenames in os.walk(top):
                here = Path(dirpath)
                dirnames[:] = [
                    d for d in dirnames if here / d not in (example_out, self.root / "cache")
                ]
                for name in [*filenames, *dirnames]:
                    st_ = os.lstat(here / name)
                    seen[os.fsencode(here / name).hex()] = (
                        st_.st_size,
                        st_.st_mtime_ns,
                        stat.S_IMODE(st_.st_mode),
                    )
        return seen


@pytest.fixture
def sandbox(tmp_path, make_planted_store, make_video, monkeypatch) -> Sandbox:
    store = make_planted_store("planted", n_train=2, n_test=2, crops=1).path
    video = make_video("v.mp4", n_frames=20, size=(32, 24))
    box = Sandbox(tmp_path / "sandbox", store, video)
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(box.root / "cache"))
    monkeypatch.setenv("WSVAD_CACHE_DIR", str(box.root / "cache" / "wsvad"))
    monkeypatch.setenv("MPLCONFIGDIR", str(box.root / "cache" / "matplotlib"))
    monkeypatch.chdir(cwd)
    yield box
    (box.inputs / "unreadable.yaml").chmod(0o644)


def _values(*pool) -> st.SearchStrategy:
    return st.sampled_from(pool)


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
INT = st.one_of(st.integers(-3, 3).map(str), _values(str(10**12), str(-(10**12)), "1e3", "nan"))
FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(str), _values("", "x", "-0")
)
# Cheap settings: a run that is valid after all must end in seconds (no dask cluster, no i3d).
OPTIONS: dict[str, dict[str, st.SearchStrategy]] = {
    "check": {
        "--dataset": _values("ucf", "xd", "shanghaitech", "folder", "synthetic", "nope"),
        "--root": "path",
        "--probe": _values("annotated", "all", "none", "bogus"),
        "--train-list": "path",
        "--test-list": "path",
        "--annotations": "path",
        "--labels": "path",
    },
    "info": {"": "path", "--store": "path"},
    "extract": {
        "--dataset": _values("folder", "ucf", "nope"),
        "--root": "path",
        "--out": "out",
        "--backbone": _values("random3d", "nope", ""),
        "--crops": _values("1", "0", "3", "-1", "ten"),
        "--workers": _values("0", "-1", "x"),
        "--config": "path",
        "--snippet-len": INT,
        "--stride": INT,
        "--fps": FLOAT,
        "--resize": _values("short64", "0x0", "x"),
        "--decoder": _values("auto", "av", "decord", "vlc"),
        "--weights": "path",
        "--set": _values("crop_size=48", "backbone_options.dim=4", "nope=1", "=", "chunk_t=-1"),
    },
    "train": {
        "--store": "path",
        "--out": "out",
        "--detector": _values("mil", "rtfm", "nope"),
        "--iterations": _values("1", "2", "0", "-5", "x"),
        "--seed": INT,
        "--seeds": _values("0,1", "", "a,b", "-1"),
        "--config": "path",
        "--selection": _values("last", "val", "test", "x"),
        "--device": _values("cpu", "cuda:7", "tpu", ""),
        "--set": _values("sampler.batch_per_class=2", "optim.lr=-1", "x=1"),
    },
    "evaluate": {
        "--run": "path",
        "--scores": "path",
        "--dataset": _values("ucf", "folder", "nope"),
        "--root": "path",
        "--store": "path",
        "--out": "out",
        "--stride": INT,
        "--snippet-len": INT,
        "--threshold": FLOAT,
        "--protocol": _values("wsvad", "authors", "x"),
        "--no-plots": None,
        "--config": "path",
    },
    "score": {
        "": "path",
        "--run": "path",
        "--out": "out",
        "--window": INT,
        "--crops": INT,
        "--stream": None,
        "--timeout": _values("0.5", "0", "-1", "x"),
        "--min-duration": FLOAT,
        "--from-store": "path",
    },
    "import-model": {
        "--format": _values("rtfm", "nope"),
        "--weights": "path",
        "--store": "path",
        "--out": "out",
        "--dataset": _values("ucf", "nope"),
        "--root": "path",
    },
    "compare": {"": "path", "--report": "out"},
    "report": {"": "path", "--out": "out", "--title": TEXT},
    "import": {
        "--format": _values("rtfm", "sultani", "nope"),
        "--list": "path",
        "--features-root": "path",
        "--dataset": _values("ucf", "nope"),
        "--root": "path",
        "--out": "out",
        "--snippet-len": INT,
        "--workers": _values("0", "1", "-1"),
        "--config": "path",
    },
    "export": {
        "--store": "path",
        "--format": _values("rtfm", "nope", ""),
        "--out": "out",
        "--split": _values("train", "test", "x"),
        "--path-prefix": TEXT,
    },
    "concat": {"--store": "path", "--out": "out", "--config": "path"},
    "synth": {
        "--out": "out",
        "--seed": INT,
        "--n-train": _values("0", "1", "-1", "x"),
        "--n-test": _values("0", "1", "-2"),
        "--min-seconds": _values("0.1", "0", "-1", "x"),
        "--max-seconds": _values("0.2", "0", "nan"),
        "--size": _values("32x24", "0x0", "big", ""),
        "--fps": _values("5", "0", "-3"),
    },
    "slurm-script": {
        "--out": "out",
        "--script": "out",
        "--log-dir": "out",
        "--dataset": _values("ucf", "nope"),
        "--root": "path",
        "--shards": INT,
        "--walltime": TEXT,
        "--memory": TEXT,
    },
    "datasets": {},
    "backbones": {},
}

# Always given, from the cheap pools above: a command line that turns out valid must end in seconds
# (the defaults would train thousands of steps, run I3D, or write a full synthetic dataset).
BUDGET = {
    "extract": ["--backbone"],
    "train": ["--iterations"],
    "synth": ["--n-train", "--n-test", "--max-seconds", "--size"],
}


@st.composite
def command_lines(draw, box: Sandbox, out_dir: Path) -> list[str]:
    command = draw(st.sampled_from(sorted(OPTIONS)))
    spec = OPTIONS[command]
    budget = BUDGET.get(command, [])
    others = sorted(set(spec) - set(budget))
    chosen = budget + (
        draw(st.lists(st.sampled_from(others), unique=True, max_size=6)) if others else []
    )
    argv = [command]
    outputs = [
        out_dir / "new",
        out_dir / "deep" / "er",
        Path(os.fsdecode(bytes(out_dir) + b"/out-\xe9")),
        out_dir / ("o" * 300),
        out_dir / "file",  # exists as a file
    ]
    for name in chosen:
        kind = spec[name]
        if kind is None:
            argv.append(name)
            continue
        if kind == "path":
            value = draw(st.one_of(st.sampled_from(box.paths), TEXT))
        elif kind == "out":
            value = str(draw(st.sampled_from(outputs)))
        else:
            value = draw(kind)
        argv += [value] if name == "" else [name, value]
    return argv


def _fuzz(sandbox: Sandbox, data, capsys) -> None:
    n = len(list(sandbox.outputs.iterdir()))
    out_dir = sandbox.outputs / f"example-{n}"
    out_dir.mkdir()
    (out_dir / "file").write_text("an existing file\n")
    argv = data.draw(command_lines(sandbox, out_dir), label="argv")
    before = sandbox.snapshot(out_dir)
    code = run(argv)
    for name in DEFAULT_OUTPUTS.get(argv[0], []):
        (Path.cwd() / name).unlink(missing_ok=True)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code in EXIT_CODES, (argv, code, text[-2000:])
    assert "Traceback" not in text, (argv, text[-3000:])
    assert "run with --debug for the traceback" not in text, (argv, text[-2000:])
    if code in (1, 2):  # a failure says why: an error line, or `wsvad check`'s problem table
        assert re.search(r"^(error|Error)|│ error ", text, re.M), (argv, text[-2000:])
    assert sandbox.snapshot(out_dir) == before, argv  # nothing written outside the outputs


FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_LONG = settings(
    FUZZ, max_examples=int(os.environ.get("WSVAD_FUZZ_EXAMPLES", "400")), derandomize=False
)


@FUZZ
@given(data=st.data())
def test_fuzzed_command_lines_end_with_a_known_exit_code_and_write_only_their_outputs(
    sandbox, data, capsys
):
    _fuzz(sandbox, data, capsys)


@pytest.mark.slow
@FUZZ_LONG
@given(data=st.data())
def test_fuzzed_command_lines_many(sandbox, data, capsys):
    _fuzz(sandbox, data, capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "{inputs}/" + "n" * 300], "{inputs}/" + "n" * 300 + ": file name too long"),
        (["compare", "{inputs}/garbage.bin"], "{inputs}/garbage.bin: not a text file"),
        (
            ["concat", "--config", "{inputs}/garbage.bin", "--store", "{inputs}/store"],
            "{inputs}/garbage.bin: a config must be UTF-8 text (byte 128: invalid start byte)",
        ),
        (["compare", "{inputs}/caf\udce9-\udcff.mp4"], "{inputs}/caf\\udce9-\\udcff.mp4"),
        (
            ["score", "{inputs}/videos/a.mp4", "--run", "{inputs}/fake_run"],
            "{inputs}/fake_run: the run's feature store 3 is gone",
        ),
    ],
    ids=["name-too-long", "binary-metrics", "binary-config", "non-utf8-path", "bad-run-json"],
)
def test_what_fuzzing_found_is_one_line(sandbox, capsys, argv, message):
    """Each of these ended in "run with --debug for the traceback" or a UnicodeEncodeError."""
    inputs = str(sandbox.inputs)
    assert run([a.replace("{inputs}", inputs) for a in argv]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message.replace("{inputs}", inputs) in lines[0], err
    assert "run with --debug" not in err


def test_a_slurm_script_for_a_non_utf8_store_path_names_its_real_bytes(tmp_path):
    """Found by fuzzing: writing the script failed with UnicodeEncodeError (an unexpected error)."""
    out = Path(os.fsdecode(bytes(tmp_path) + b"/store-\xe9"))
    script = tmp_path / "array.sh"
    args = ["slurm-script", "--root", str(tmp_path), "--out", str(out), "--script", str(script)]
    assert run([*args, "--dataset", "folder"]) == 0
    assert bytes(tmp_path) + b"/store-\xe9" in script.read_bytes()
