"""Optimizers and schedules: `GBGOptimizer` (TensorFlow backend) applies GBG's min-norm combination of group
gradients; `PyTorchSGD` is SGD with PyTorch's momentum form (the learning rate outside the momentum buffer), as the
papers' code runs it; `LinearWarmup` is the CIFAR-LT recipe's serializable learning-rate warm-up."""

from keras_longtail.gbg.gbg_optimizer import GBGOptimizer
from keras_longtail.optimizers.linear_warmup import LinearWarmup
from keras_longtail.optimizers.pytorch_sgd import PyTorchSGD

__all__ = ["GBGOptimizer", "LinearWarmup", "PyTorchSGD"]
