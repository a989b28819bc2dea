"""I3D-ResNet50: the shared checkpoint's key layout, BatchNorm folding, checked keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from wsvad.errors import WsvadError
from wsvad.extract.backbones import build_backbone, get_backbone_spec
from wsvad.extract.backbones.i3d_r50 import expected_keys
from wsvad.extract.backbones.weights import fold_batch_norm


class _Block(nn.Module):
    """Bottleneck with unfolded BatchNorm, as the shared PyTorch checkpoint defines it."""

    def __init__(self, cin, planes, stride, temporal):
        super().__init__()
        self.conv1 = nn.Conv3d(
            cin, planes, (1 + 2 * temporal, 1, 1), padding=(temporal, 0, 0), bias=False
        )
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(
            planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False
        )
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv3d(cin, planes * 4, 1, (1, stride, stride), bias=False),
                nn.BatchNorm3d(planes * 4),
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


def _reference_r50() -> nn.Module:
    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv3d(3, 64, (5, 7, 7), (2, 2, 2), (2, 3, 3), bias=False)
            self.bn1 = nn.BatchNorm3d(64)
            cin = 64
            for i, (planes, n, stride, temporal) in enumerate(
                [
                    (64, 3, 1, [1, 1, 1]),
                    (128, 4, 2, [1, 0, 1, 0]),
                    (256, 6, 2, [1, 0, 1, 0, 1, 0]),
                    (512, 3, 2, [0, 1, 0]),
                ],
                1,
            ):
                blocks = []
                for b in range(n):
                    blocks.append(_Block(cin, planes, stride if b == 0 else 1, temporal[b]))
                    cin = planes * 4
                setattr(self, f"layer{i}", nn.Sequential(*blocks))
            self.fc = nn.Linear(2048, 400)

        def forward(self, x):
            x = nn.functional.max_pool3d(torch.relu(self.bn1(self.conv1(x))), (2, 3, 3), (2, 2, 2))
            x = nn.functional.max_pool3d(self.layer1(x), (2, 1, 1), (2, 1, 1))
            x = self.layer4(self.layer3(self.layer2(x)))
            return nn.functional.adaptive_avg_pool3d(x, 1).flatten(1)

    torch.manual_seed(0)
    net = Reference()
    gen = torch.Generator().manual_seed(1)
    for module in net.modules():  # non-trivial BN statistics, so folding is really exercised
        if isinstance(module, nn.BatchNorm3d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(c, generator=gen) * 0.5 + 0.25)
            module.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def reference_and_weights(tmp_path_factory):
    net = _reference_r50()
    path = tmp_path_factory.mktemp("r50") / "i3d_r50_kinetics.pth"
    # DataParallel-style
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    return net, path


def test_i3d_r50_matches_the_unfolded_reference(reference_and_weights):
    net, path = reference_and_weights
    model = build_backbone("i3d_r50", weights=path)
    x = torch.rand(4, 3, 16, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.inference_mode():
        expected = net(x)
        out = model(x)
        single = model(x[:1])  # a batch item alone gives what it gives in the batch
    assert out.shape == (4, 2048)
    scale = expected.abs().max()
    assert scale > 0.1
    torch.testing.assert_close(out / scale, expected / scale, atol=1e-4, rtol=0)
    torch.testing.assert_close(single / scale, expected[:1] / scale, atol=1e-4, rtol=0)
    assert not torch.allclose(out[0], out[1])


def test_i3d_r50_refuses_missing_and_misshaped_keys(reference_and_weights, tmp_path):
    net, _ = reference_and_weights
    state = {k: v for k, v in net.state_dict().items() if k != "layer3.2.bn2.running_var"}
    state["layer4.0.downsample.0.weight"] = torch.zeros(2048, 1024, 1, 1, 1 + 2)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WsvadError) as err:
        build_backbone("i3d_r50", weights=path)
    message = str(err.value)
    assert message.startswith(f"{path}: not the expected weights")
    assert "missing keys: layer3.2.bn2.running_var" in message
    assert (
        "wrong shapes: layer4.0.downsample.0.weight (2048, 1024, 1, 1, 3) != (2048, 1024, 1, 1, 1)"
        in message
    )


def test_i3d_r50_without_weights_says_where_to_get_them():
    with pytest.raises(
        WsvadError, match=r"--weights PATH.*i3d_r50_kinetics\.pth.*pytorch-resnet3d"
    ):
        build_backbone("i3d_r50")


def test_i3d_r50_spec_and_documented_keys():
    spec = get_backbone_spec("i3d_r50")
    assert (spec.feature_shape, spec.snippet_len, spec.crop_size, spec.resize) == (
        (2048,),
        16,
        224,
        "short256",
    )
    clips = np.zeros((1, 1, 2, 2, 3), dtype=np.uint8)
    clips[0, 0, 1, 1] = 255
    # RGB in [-1, 1]
    np.testing.assert_allclose(spec.prepare(clips)[0, :, 0], [[[-1, -1], [-1, 1]]] * 3)
    keys = expected_keys()
    assert keys["conv1.weight"] == (64, 3, 5, 7, 7)
    assert keys["layer1.0.conv1.weight"] == (64, 64, 3, 1, 1)  # inflated 3x1x1
    assert keys["layer2.1.conv1.weight"] == (128, 512, 1, 1, 1)  # not inflated
    assert keys["layer4.0.downsample.1.running_var"] == (2048,)
    assert len(keys) == 53 * 5 and not any(k.startswith("fc") for k in keys)


def test_fold_batch_norm_equals_conv_then_batch_norm():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 5, 6, 6, generator=gen)
    kernel = torch.randn(3, 4, 3, 3, 3, generator=gen)
    gamma, beta, mean = (
        torch.rand(3, generator=gen) + 0.5,
        torch.randn(3, generator=gen),
        torch.randn(3, generator=gen),
    )
    var = torch.rand(3, generator=gen) + 0.1
    expected = nn.functional.batch_norm(
        nn.functional.conv3d(x, kernel), mean, var, gamma, beta, False, 0.0, 1e-3
    )
    w, b = fold_batch_norm(
        kernel.numpy(), beta.numpy(), mean.numpy(), var.numpy(), 1e-3, gamma=gamma.numpy()
    )
    torch.testing.assert_close(
        nn.functional.conv3d(x, torch.from_numpy(w), torch.from_numpy(b)),
        expected,
        atol=1e-4,
        rtol=1e-5,
    )
    # scale-free (TF I3D)
    w, b = fold_batch_norm(kernel.numpy(), beta.numpy(), mean.numpy(), var.numpy(), 1e-3)
    expected = nn.functional.batch_norm(
        nn.functional.conv3d(x, kernel), mean, var, None, beta, False, 0.0, 1e-3
    )
    torch.testing.assert_close(
        nn.functional.conv3d(x, torch.from_numpy(w), torch.from_numpy(b)),
        expected,
        atol=1e-4,
        rtol=1e-5,
    )
