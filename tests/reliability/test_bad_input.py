"""Bad input is refused clearly: property tests over the REAL ExtractConfig / TrainConfig, fuzzed
dataset lists and annotation files through `wsvad check`, and video ids that try to leave the
store."""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsvad.cli import run
from wsvad.cli.app import console
from wsvad.config import load_config
from wsvad.errors import WsvadError
from wsvad.extract.config import ExtractConfig
from wsvad.pipeline.store import FeatureStore, node_name, video_id_of
from wsvad.train.config import TrainConfig

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
not_positive = st.integers(max_value=0)
containers = st.one_of(
    st.lists(st.integers(), min_size=1, max_size=3),
    st.dictionaries(st.just("k"), st.integers(), min_size=1),
)
words = st.text(alphabet=string.ascii_letters + "_-", min_size=1, max_size=12)

# dotted key -> values that must be refused (out of range, outside a Literal, or the wrong type)
EXTRACT_BAD = {
    "snippet_len": not_positive,
    "stride": not_positive,
    "batch_clips": not_positive,
    "prefetch": not_positive,
    "crop_size": st.integers(max_value=7),
    "fps": st.floats(max_value=0.0),
    "crops": st.sampled_from([0, 2, 3, 8, 16]),
    "tail": words.filter(lambda w: w not in ("drop", "pad", "loop")),
    "dtype": words.filter(lambda w: w not in ("float32", "float16")),
    "decoder": words.filter(lambda w: w not in ("auto", "decord", "av")),
    "device": words.filter(lambda w: w not in ("cpu", "cuda")),
    "resize": st.sampled_from(["big", "short", "0x0", "x256"]),
    "cluster.workers": not_positive,
    "cluster.allowed_failures": st.integers(max_value=-1),
    "split": containers,
    "overwrite": containers,
    "backbone_options": st.lists(st.integers(), min_size=1),
}
TRAIN_BAD = {
    "optim.lr": st.floats(max_value=0.0),
    "optim.weight_decay": st.floats(max_value=-1e-9),
    "optim.name": words.filter(
        lambda w: w not in ("adam", "adagrad", "adadelta", "rmsprop", "radam", "sgd")
    ),
    "bags.count": not_positive,
    "bags.rule": words.filter(lambda w: w not in ("rtfm", "sultani")),
    "iterations": not_positive,
    "log_every": not_positive,
    "checkpoint_every": not_positive,
    "selection.val_fraction": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0)),
    "selection.mode": words.filter(lambda w: w not in ("last", "val")),
    "sampler.batch_per_class": not_positive,
    "precision": words.filter(lambda w: w not in ("fp32", "bf16")),
    "seed": containers,
    "detector": st.integers(),
}
BASES = {
    ExtractConfig: ({"root": "videos", "out": "store"}, EXTRACT_BAD),
    TrainConfig: ({"store": "store", "out": "run"}, TRAIN_BAD),
}


def _nest(dotted: str, value) -> dict:
    keys = dotted.split(".")
    tree = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        tree = {key: tree}
    return tree


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "bad config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize("model", [ExtractConfig, TrainConfig], ids=["extract", "train"])
@FUZZ
@given(data=st.data())
def test_bad_values_name_the_key_and_the_file(model, data, tmp_path):
    base, bad = BASES[model]
    key = data.draw(st.sampled_from(sorted(bad)))
    value = data.draw(bad[key])
    path = _write(tmp_path, {**base, **_nest(key, value)})
    with pytest.raises(WsvadError) as info:
        load_config(model, path)
    lines = str(info.value).splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines)
    assert any(
        line.startswith(f"{path}: {key}: ") or line.startswith(f"{path}: {key}.") for line in lines
    ), lines


@pytest.mark.parametrize("model", [ExtractConfig, TrainConfig], ids=["extract", "train"])
@FUZZ
@given(data=st.data())
def test_unknown_keys_are_named_wherever_they_are(model, data, tmp_path):
    base, _ = BASES[model]
    section = data.draw(
        st.sampled_from(["", "cluster."] if model is ExtractConfig else ["", "optim.", "bags."])
    )
    known = set(model.model_fields) | {
        "workers",
        "kind",
        "lr",
        "count",
        "name",
        "rule",
        "pool",
        "dtype",
    }
    name = data.draw(words.filter(lambda w: w not in known))
    key = section + name
    path = _write(tmp_path, _deep({**base}, _nest(key, 1)))
    with pytest.raises(WsvadError) as info:
        load_config(model, path)
    assert str(info.value) == f"{path}: {key}: unknown key (got 1)"


def _deep(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        out[key] = (
            _deep(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


@FUZZ
@given(text=st.text(max_size=60))
def test_any_yaml_text_is_refused_on_one_line_or_accepted(text, tmp_path):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(ExtractConfig, path)
    except WsvadError as exc:
        assert all(line.startswith(f"{path}:") for line in str(exc).splitlines())


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("crops: 10\ncluster: {workers: 2\n")
    with pytest.raises(WsvadError, match=r"^.*broken\.yaml: line 3: malformed YAML: .+$"):
        load_config(ExtractConfig, path)


# ---------------------------------------------------------------------------- dataset files
NASTY_LINES = [
    b"../../../etc/passwd",
    b"/etc/passwd",
    b"Abuse/../../x.mp4",
    b"Abuse028_x264.mp4 Abuse 10",
    b"Abuse028_x264.mp4 Abuse a b -1 -1",
    b"Abuse028_x264.mp4  Abuse  99999999999999999999  5  -1  -1",
    b"x\x00y.mp4",
    b"\xef\xbb\xbfAbuse/Abuse001_x264.mp4",
    b"   ",
    b"\xff\xfe\x00garbage",
    b"Abuse028_x264.mp4 Abuse 20 10 -1 -1",
    b"01_0015 5 1",
    b"v=abc__#1_label_B4-0-0 10",
    b"v=abc__#1_label_B4-0-0 30 10 5",
    b"Arrest/Arrest001_x264.mp4\tArrest\t-5\t3",
]
LAYOUTS = {
    "ucf": {
        "Anomaly_Train.txt": (
            b"Abuse/Abuse001_x264.mp4\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4"
        ),
        "Anomaly_Test.txt": (
            b"Abuse/Abuse028_x264.mp4\nTesting_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4"
        ),
        "Temporal_Anomaly_Annotation_for_Testing_Videos.txt": (
            b"Abuse028_x264.mp4  Abuse  165  240  -1  -1"
        ),
    },
    "xd": {
        "annotations.txt": b"v=S-7rRLrxnVQ__#1_label_B4-0-0 0 1517 1970 3038",
        "rgb.list": b"/media/RGB/A.B.1995__#00-26-51_00-27-53_label_A__0.npy",
        "rgb_test.list": b"/media/RGBTest/v=S-7rRLrxnVQ__#1_label_B4-0-0__0.npy",
    },
    "shanghaitech": {"SH_Train.txt": b"01_001\n01_002", "SH_Test.txt": b"01_0015\n01_0016"},
}
# one listed video per layout (an empty file: --probe none), so that check reads the lists
# instead of stopping at "no videos found under ROOT"
VIDEOS = {
    "ucf": "Abuse/Abuse001_x264.mp4",
    "xd": "A.B.1995__#00-26-51_00-27-53_label_A.mp4",
    "shanghaitech": "01_001.avi",
}


@pytest.mark.parametrize("dataset", sorted(LAYOUTS))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_lists_give_a_problem_table_never_a_traceback(
    dataset, data, tmp_path_factory, capsys, monkeypatch
):
    monkeypatch.setattr(console, "width", 300)
    root = tmp_path_factory.mktemp(dataset)
    junk = st.lists(st.one_of(st.sampled_from(NASTY_LINES), st.binary(max_size=30)), max_size=4)
    for name, content in LAYOUTS[dataset].items():
        lines = content.split(b"\n")
        for line in data.draw(junk, label=name):
            lines.insert(data.draw(st.integers(0, len(lines))), line)
        (root / name).write_bytes(data.draw(st.sampled_from([b"\n", b"\r\n"])).join(lines))
    (root / VIDEOS[dataset]).parent.mkdir(parents=True, exist_ok=True)
    (root / VIDEOS[dataset]).touch()
    code = run(["check", "--dataset", dataset, "--root", str(root), "--probe", "none"])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    if captured.err.startswith("error: no videos found under"):
        return  # the junk hid the one video: a one-line error is the right answer
    assert "Traceback" not in captured.out + captured.err
    assert (
        "run with --debug for the traceback" not in captured.err
    )  # the CLI's last-resort crash line
    if code == 1:
        assert "error" in captured.out  # the problem table lists the errors


# ---------------------------------------------------------------------------- video ids
HOSTILE_IDS = [
    "../escape",
    "/abs/path",
    "a/../../b",
    "..",
    ".",
    ".hidden",
    "x\x00y",
    "",
    "   ",
    "sub/dir/v",
    "..\\..\\win",
    "C:\\evil",
    "ü ñ 空 video",
    "a b#c%2F",
    "__init__",
    "v=U6MC8JJJZSY__#1_label_G-0-0",
    "~root",
    "$HOME",
    "a" * 160,
    "空" * 20,
]


@FUZZ
@given(video_id=st.text(max_size=40))
def test_node_names_never_leave_the_videos_folder(video_id):
    try:
        node = node_name(video_id)
    except WsvadError as exc:
        reasons = ("empty", "must not start with '.' or '__'", "contains a NUL byte", "too long (")
        assert str(exc).startswith("invalid video id ") and any(
            f": {r}" in str(exc) for r in reasons
        ), str(exc)
        return
    assert (
        "/" not in node
        and "\x00" not in node
        and node not in (".", "..")
        and not node.startswith(".")
    )
    assert video_id_of(node) == video_id


def test_hostile_ids_are_refused_or_stored_inside_the_store(tmp_path):
    store = FeatureStore.create(
        tmp_path / "out" / "store",
        {"feature_shape": [2], "dtype": "float32", "crops": 1, "backbone": "x", "config_hash": "h"},
    )
    accepted, refused = [], {}
    for vid in HOSTILE_IDS:
        try:
            store.write_video(vid, np.ones((1, 1, 2), np.float32), {})
            accepted.append(vid)
        except WsvadError as exc:
            refused[vid] = str(exc)
    assert sorted(refused) == sorted(
        [
            "../escape",
            "..",
            ".",
            ".hidden",
            "x\x00y",
            "",
            "   ",
            "..\\..\\win",
            "__init__",
            "空" * 20,
        ]
    )
    assert refused["空" * 20] == (
        f"invalid video id {'空' * 20!r}...: too long (180 characters once percent-encoded, "
        "at most 160)"
    )
    assert refused[".."] == "invalid video id '..': must not start with '.' or '__'"
    assert refused["x\x00y"] == "invalid video id 'x\\x00y': contains a NUL byte"
    assert store.video_ids() == sorted(accepted)
    for vid in accepted:
        assert store.read(vid).tolist() == [[[1.0, 1.0]]]
    inside = (tmp_path / "out" / "store").resolve()
    for dirpath, _, files in os.walk(tmp_path):
        for name in files:
            assert (Path(dirpath) / name).resolve().is_relative_to(inside), Path(dirpath) / name
    assert not Path("/abs/path").exists() and not (tmp_path / "escape").exists()


def test_an_unusable_id_refuses_the_run_before_any_work(tmp_path, make_video, tiny_args, capsys):
    make_video("videos/ok.mp4", n_frames=20)
    long_name = "a" * 170 + ".mp4"
    make_video(f"videos/{long_name}", n_frames=20)
    assert run(tiny_args(tmp_path / "videos", tmp_path / "store", "--workers", "0")) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {tmp_path / 'videos'}: 1 video id(s) cannot name a store array: {long_name}: "
        f"invalid video id {'a' * 40!r}...: too long (170 characters once percent-encoded, at "
        "most 160)"
    )
    assert not (tmp_path / "store").exists()
