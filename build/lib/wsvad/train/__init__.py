"""The train stage: bag cache, samplers, training loop and the run directory (entry: run_train)."""

from wsvad.train.config import TrainConfig
from wsvad.train.run import TrainResult, run_train

__all__ = ["TrainConfig", "TrainResult", "run_train"]
