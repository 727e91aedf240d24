"""Optimizers and schedules: `GBGOptimizer` (TensorFlow backend) applies GBG's min-norm combination of group
gradients; `LinearWarmup` is the CIFAR-LT recipe's serializable learning-rate warm-up."""

from keras_longtail.gbg.gbg_optimizer import GBGOptimizer
from keras_longtail.optimizers.linear_warmup import LinearWarmup

__all__ = ["GBGOptimizer", "LinearWarmup"]
