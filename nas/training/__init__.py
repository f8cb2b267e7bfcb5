"""Training: the loop, device choice and accuracy."""

from nas.training.loop import Diverged, TrainConfig, init_model, pick_device, predict, train, train_config

__all__ = ["Diverged", "TrainConfig", "init_model", "pick_device", "predict", "train", "train_config"]
