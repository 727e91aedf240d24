"""In-graph checks on tensors (label ranges), for code written in `keras.ops`.

On the TensorFlow backend they become `tf.debugging` assertions (raised in eager
and graph mode; XLA drops them). Other backends get no in-graph check.
"""

import keras


def labels_in_range(labels, num_classes, argument="y_true"):
    """Returns `labels`, asserting 0 <= labels < num_classes on TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return labels
    import tensorflow as tf

    message = f"Expected `{argument}` labels in [0, {num_classes})"
    checks = [
        tf.debugging.assert_greater_equal(labels, tf.cast(0, labels.dtype), message=message),
        tf.debugging.assert_less(labels, tf.cast(num_classes, labels.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(labels)
