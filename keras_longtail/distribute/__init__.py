"""Helpers for training with `tf.distribute` across several workers (TensorFlow backend)."""

from keras_longtail.distribute.prepare_multi_worker_fit import prepare_multi_worker_fit

__all__ = ["prepare_multi_worker_fit"]
