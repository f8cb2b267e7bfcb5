"""Training: the loop, device choice and accuracy."""

from nas.training.loop import TrainConfig, init_model, pick_device, predict, train, train_config

__all__ = ["TrainConfig", "init_model", "pick_device", "predict", "train", "train_config"]
