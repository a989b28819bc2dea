"""Loop pieces: optimizers by name, the step schedule, epochs -> steps, checkpoint contents."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

from wsvad.train import TrainConfig, run_train
from wsvad.train.config import OptimConfig
from wsvad.train.loop import build_optimizer, lr_at


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("adam", torch.optim.Adam),
        ("adagrad", torch.optim.Adagrad),
        ("adadelta", torch.optim.Adadelta),
        ("rmsprop", torch.optim.RMSprop),
        ("radam", torch.optim.RAdam),
        ("sgd", torch.optim.SGD),
    ],
)
def test_optimizers_by_name_get_lr_and_weight_decay(name, cls):
    opt = build_optimizer(
        [torch.nn.Parameter(torch.zeros(2))],
        OptimConfig(name=name, lr=0.05, weight_decay=0.01, momentum=0.0),
    )
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == 0.05 and opt.param_groups[0]["weight_decay"] == 0.01


def test_optimizer_eps_accumulator_and_rho_reach_torch():
    param = [torch.nn.Parameter(torch.zeros(2))]
    adagrad = build_optimizer(
        param, OptimConfig(name="adagrad", lr=0.01, eps=1e-8, initial_accumulator_value=0.1)
    )
    assert adagrad.defaults["eps"] == 1e-8 and adagrad.defaults["initial_accumulator_value"] == 0.1
    assert torch.equal(adagrad.state[param[0]]["sum"], torch.full((2,), 0.1))
    adadelta = build_optimizer(param, OptimConfig(name="adadelta", lr=0.01, eps=1e-8, rho=0.8))
    assert (adadelta.defaults["eps"], adadelta.defaults["rho"]) == (1e-8, 0.8)
    # left unset: torch's own defaults
    assert build_optimizer(param, OptimConfig(name="adagrad", lr=0.01)).defaults["eps"] == 1e-10
    assert build_optimizer(param, OptimConfig(name="adadelta", lr=1.0)).defaults["rho"] == 0.9


def _adam_trajectory(make, steps: int, state: dict | None = None):
    """Parameters after ``steps`` Adam steps on seeded gradients, from ``state`` if given."""
    start = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=start)) for s in [(300,), (7, 5)]]
    opt = make(params)
    if state is not None:  # a copy, as read from a checkpoint file: optimizers update in place
        opt.load_state_dict(copy.deepcopy(state["opt"]))
        for p, saved in zip(params, state["params"], strict=True):
            p.data.copy_(saved)
    grads = torch.Generator().manual_seed(1 + len(state or {}))
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=grads)
        opt.step()
    return opt, [p.detach().clone() for p in params]


def test_adam_is_torchs_fused_step_equal_to_the_foreach_step():
    cfg = OptimConfig(name="adam", lr=1e-2, weight_decay=5e-3)
    ours, got = _adam_trajectory(lambda ps: build_optimizer(ps, cfg), 20)
    _, want = _adam_trajectory(
        lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=5e-3, foreach=True), 20
    )
    assert ours.defaults["fused"] is True
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, rtol=0, atol=1e-6)
    # and a checkpoint written by the foreach step (runs before the fused one) resumes
    foreach = lambda ps: torch.optim.Adam(ps, lr=1e-2, weight_decay=5e-3, foreach=True)  # noqa: E731
    old, old_params = _adam_trajectory(foreach, 5)
    state = {"opt": old.state_dict(), "params": old_params}
    resumed, got = _adam_trajectory(lambda ps: build_optimizer(ps, cfg), 5, state)
    _, want = _adam_trajectory(foreach, 5, state)
    assert int(resumed.state_dict()["state"][0]["step"]) == 10
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, rtol=0, atol=1e-6)


def test_adagrad_step_is_keras_1s_update():
    """Keras 1 Adagrad: a += g^2; p -= lr g / (sqrt(a) + eps), accumulators from 0."""
    p = torch.nn.Parameter(torch.tensor([0.5, -1.0]))
    opt = build_optimizer([p], OptimConfig(name="adagrad", lr=0.01, eps=1e-8))
    g1, g2 = torch.tensor([0.2, -3.0]), torch.tensor([0.1, 1.0])
    expect = p.detach().clone()
    acc = torch.zeros(2)
    for g in (g1, g2):
        p.grad = g.clone()
        opt.step()
        acc = acc + g**2
        expect = expect - 0.01 * g / (acc.sqrt() + 1e-8)
    assert torch.allclose(p.detach(), expect, rtol=0, atol=1e-7)


def test_step_schedule_multiplies_at_milestones():
    cfg = OptimConfig(name="rmsprop", lr=1.0e-4, lr_milestones=[80000], lr_gamma=0.1)
    assert lr_at(cfg, 0) == pytest.approx(1.0e-4) and lr_at(cfg, 79999) == pytest.approx(1.0e-4)
    assert lr_at(cfg, 80000) == pytest.approx(1.0e-5)


def test_epochs_become_steps_and_the_checkpoint_holds_everything(planted_store, tmp_path):
    out = tmp_path / "ep"
    cfg = TrainConfig.model_validate(
        {
            "store": str(planted_store.path),
            "out": str(out),
            "epochs": 2,
            "sampler": {"batch_per_class": 6},
            "bags": {"count": 8},
        }
    )
    result = run_train(cfg)
    # 12 training videos per label x 2 crops = 24 samples per class, 6 per step -> 4 steps per epoch
    assert result.steps == 8
    meta = json.loads((out / "checkpoints" / "last.json").read_text())
    assert meta["step"] == 8 and meta["sampler"] == {"epoch": 2, "position": 0}
    assert set(meta["rng"]) == {"python", "numpy"} and meta["optimizer"]["param_groups"][0][
        "lr"
    ] == pytest.approx(1.0e-2)  # mil's default: the released code's Adagrad lr
    tensors = load_file(out / "checkpoints" / "last.safetensors")
    assert "rng.torch" in tensors and "model.fc1.weight" in tensors
    assert {k.split(".", 2)[2] for k in tensors if k.startswith("optim.")} == {
        "step",
        "sum",
    }  # Adagrad's state


def test_iterations_and_epochs_are_exclusive():
    with pytest.raises(ValueError, match="set either iterations or epochs, not both"):
        TrainConfig.model_validate({"store": "s", "out": "o", "iterations": 3, "epochs": 1})
    with pytest.raises(ValueError, match="dataset and root go together"):
        TrainConfig.model_validate({"store": "s", "out": "o", "dataset": "ucf"})
