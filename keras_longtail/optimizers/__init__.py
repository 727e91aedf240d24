"""Optimizer wrappers (TensorFlow backend): `GBGOptimizer` applies GBG's min-norm combination of group gradients."""

from keras_longtail.optimizers.gbg_optimizer import GBGOptimizer

__all__ = ["GBGOptimizer"]
