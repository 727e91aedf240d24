"""Callbacks for long-tailed learning."""

from keras_longtail.callbacks.gala_accumulator import GALAAccumulator

__all__ = ["GALAAccumulator"]
