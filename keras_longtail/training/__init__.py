"""Training-step methods: Keras models with a method-specific `train_step` (TensorFlow only)."""

from keras_longtail.training.gbg_mixin import GBGMixin
from keras_longtail.training.gbg_model import GBGModel

__all__ = ["GBGMixin", "GBGModel"]
