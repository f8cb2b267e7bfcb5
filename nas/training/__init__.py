"""Training: the loop, device choice and accuracy."""

from nas.training.loop import TrainConfig, evaluate_accuracy, init_model, pick_device, predict, train, train_config

__all__ = ["TrainConfig", "evaluate_accuracy", "init_model", "pick_device", "predict", "train", "train_config"]
