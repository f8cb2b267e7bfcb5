"""Using a registered model: the preprocessing it needs, and ``nas predict``."""

from nas.serving.predict import PREPROCESSING_KEY, load_images, predict_files, preprocessing

__all__ = ["PREPROCESSING_KEY", "load_images", "predict_files", "preprocessing"]
