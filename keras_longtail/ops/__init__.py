"""Tensor operations used by the toolkit's methods (TensorFlow, in-graph)."""

from keras_longtail.ops.min_norm_weights import min_norm_weights

__all__ = ["min_norm_weights"]
