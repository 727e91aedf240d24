"""Tensor operations used by the toolkit's methods (TensorFlow, in-graph)."""

from keras_longtail.gbg.min_norm_weights import min_norm_weights

__all__ = ["min_norm_weights"]
