"""bf16 autocast training still learns the planted anomalies (and fp32 stays the default)."""

from wsvad.train import TrainConfig, run_train


def test_bf16_training_learns(planted_store, tmp_path):
    cfg = TrainConfig.model_validate(
        {
            "store": str(planted_store.path),
            "out": str(tmp_path / "bf16"),
            "iterations": 100,
            "sampler": {"batch_per_class": 6},
            "optim": {"lr": 1.0e-2},
            "bags": {"count": 8},
            "precision": "bf16",
        }
    )
    assert TrainConfig.model_validate({"store": "s", "out": "o"}).precision == "fp32"
    assert run_train(cfg).frame_auc > 0.9
