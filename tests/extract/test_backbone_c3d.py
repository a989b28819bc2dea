"""C3D fc6: the shared state-dict layout, checked weights, Sultani's input convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from wsvad.errors import WsvadError
from wsvad.extract.backbones import build_backbone, get_backbone_spec
from wsvad.extract.backbones.c3d import expected_keys


def _reference_c3d() -> nn.Module:
    """C3D as the shared PyTorch conversion defines it, written independently of wsvad's module."""

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            conv = lambda i, o: nn.Conv3d(i, o, kernel_size=(3, 3, 3), padding=(1, 1, 1))  # noqa: E731
            self.conv1, self.conv2 = conv(3, 64), conv(64, 128)
            self.conv3a, self.conv3b = conv(128, 256), conv(256, 256)
            self.conv4a, self.conv4b = conv(256, 512), conv(512, 512)
            self.conv5a, self.conv5b = conv(512, 512), conv(512, 512)
            self.pool1 = nn.MaxPool3d((1, 2, 2), (1, 2, 2))
            self.pool = nn.MaxPool3d((2, 2, 2), (2, 2, 2))
            self.pool5 = nn.MaxPool3d((2, 2, 2), (2, 2, 2), padding=(0, 1, 1))
            self.fc6, self.fc7, self.fc8 = (
                nn.Linear(8192, 4096),
                nn.Linear(4096, 16),
                nn.Linear(16, 487),
            )

        def forward(self, x):
            r = torch.relu
            x = self.pool1(r(self.conv1(x)))
            x = self.pool(r(self.conv2(x)))
            x = self.pool(r(self.conv3b(r(self.conv3a(x)))))
            x = self.pool(r(self.conv4b(r(self.conv4a(x)))))
            x = self.pool5(r(self.conv5b(r(self.conv5a(x)))))
            return self.fc6(x.view(-1, 8192))  # fc6 before its ReLU

    torch.manual_seed(0)
    net = Reference().eval()
    with torch.no_grad():  # small weights keep the activations in a sane range through 8 convs
        for p in net.parameters():
            p.mul_(0.5 if p.dim() > 1 else 1.0)
    return net


@pytest.fixture(scope="module")
def reference_and_weights(tmp_path_factory):
    net = _reference_c3d()
    path = tmp_path_factory.mktemp("c3d") / "c3d.pickle"
    torch.save(net.state_dict(), path)  # fc7/fc8 included, as in the shared file
    return net, path


def test_c3d_matches_the_reference_layout_with_and_without_relu(reference_and_weights):
    net, path = reference_and_weights
    x = torch.randn(1, 3, 16, 112, 112, generator=torch.Generator().manual_seed(1)) * 50
    with torch.inference_mode():
        expected = net(x)
        raw = build_backbone("c3d", weights=path, relu=False)(x)
        rectified = build_backbone("c3d", weights=path)(x)
    assert raw.shape == (1, 4096)
    torch.testing.assert_close(raw, expected, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(rectified, expected.clamp_min(0), atol=1e-3, rtol=1e-4)
    assert (raw < 0).any() and (raw > 0).any()  # so the relu option really changes something


def test_c3d_refuses_missing_and_misshaped_keys(reference_and_weights, tmp_path):
    net, _ = reference_and_weights
    state = {k: v for k, v in net.state_dict().items() if k not in ("conv5b.weight", "conv5b.bias")}
    state["fc6.weight"] = torch.zeros(4096, 100)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WsvadError) as err:
        build_backbone("c3d", weights=path)
    message = str(err.value)
    assert message.startswith(f"{path}: not the expected weights")
    assert "missing keys: conv5b.weight, conv5b.bias" in message
    assert "wrong shapes: fc6.weight (4096, 100) != (4096, 8192)" in message


def test_c3d_without_weights_says_where_to_get_them(tmp_path):
    with pytest.raises(WsvadError, match=r"--weights PATH.*'c3d\.pickle'.*DavideA/c3d-pytorch"):
        build_backbone("c3d")
    with pytest.raises(WsvadError, match=r"nope\.pickle: weights file not found"):
        build_backbone("c3d", weights=tmp_path / "nope.pickle")
    garbage = tmp_path / "garbage.pickle"
    garbage.write_bytes(b"\x80\x04not a torch file")
    with pytest.raises(WsvadError, match=r"garbage\.pickle: cannot read weights"):
        build_backbone("c3d", weights=garbage)


def test_c3d_weights_only_loading_refuses_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    with pytest.raises(WsvadError, match=r"evil\.pth: cannot read weights \(UnpicklingError"):
        build_backbone("c3d", weights=path)


def test_c3d_spec_and_prepare(reference_and_weights):
    _, path = reference_and_weights
    spec = get_backbone_spec("c3d")
    assert (spec.feature_shape, spec.snippet_len, spec.crop_size, spec.resize) == (
        (4096,),
        16,
        112,
        "171x128",
    )
    assert spec.weights_sha256 is None
    import hashlib

    assert (
        get_backbone_spec("c3d", weights=path).weights_sha256
        == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    clips = np.zeros((1, 2, 3, 3, 3), dtype=np.uint8)
    clips[0, 1, 2, 0] = (10, 20, 200)  # R, G, B
    out = spec.prepare(clips)
    assert out.shape == (1, 3, 2, 3, 3) and out.dtype == np.float32
    # Channel 0 is blue: the Caffe model was trained on BGR frames.
    np.testing.assert_allclose(
        out[0, :, 1, 2, 0], [200 - 90.25164677, 20 - 97.65700354, 10 - 101.40833461], atol=1e-4
    )
    np.testing.assert_allclose(
        out[0, :, 0, 0, 0], [-90.25164677, -97.65700354, -101.40833461], atol=1e-4
    )


def test_c3d_expected_keys_cover_conv1_to_fc6():
    keys = expected_keys()
    assert keys["conv1.weight"] == (64, 3, 3, 3, 3) and keys["fc6.weight"] == (4096, 8192)
    assert len(keys) == 18 and not any(k.startswith(("fc7", "fc8")) for k in keys)
