"""Backend checks shared by the TensorFlow-only parts of the toolkit."""

import keras


def require_tensorflow_backend(what):
    """Raises a clear error when `what` is used on a backend other than TensorFlow.

    Losses, layers, metrics and constraints are written in `keras.ops` and run on
    Keras' JAX backend too (tests/contract/test_jax_backend.py); `tf.data`
    pipelines, `train_step` mixins and state updated inside the step (GALALoss)
    are TensorFlow-only and call this when they are built.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"{what} needs the TensorFlow backend of Keras (it uses tf.data or a "
            f"TensorFlow train_step). Received: keras.backend.backend()={backend!r}. "
            "Set KERAS_BACKEND=tensorflow before importing keras."
        )


def import_tensorflow():
    """Imports TensorFlow, or explains which extra installs it."""
    try:
        import tensorflow as tf
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "keras_longtail needs TensorFlow. Install it with the project's extras: "
            "`pip install \"keras-longtail[cpu]\"` (CPU-only build where one exists), "
            "`[gpu]` (CUDA) or `[tf]` (plain tensorflow)."
        ) from error
    return tf
