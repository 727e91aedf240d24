"""Loaded by pytest before anything else (doctests in keras_longtail/ and tests/ alike).

Selects the TensorFlow backend and splits the CPU into two logical devices, which
MirroredStrategy tests need; this must happen before TensorFlow starts its runtime.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
