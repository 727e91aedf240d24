"""Label checks shared by the losses that take integer labels and `(batch, num_classes)` logits.

Out-of-range labels: eager and graph execution raise `InvalidArgumentError` (a
`tf.debugging` assertion); XLA (`jit_compile=True`) drops assertions, so the
losses also give such examples a NaN loss (and no gradient, no statistics): the
reported loss is NaN instead of a silently finite number, on every path.
"""

import keras
from keras import ops

from keras_longtail._internal import checks as _checks


def squeeze_labels(y_true):
    """`y_true` of shape (batch,) or (batch, 1) as a (batch,) tensor, or a ValueError."""
    labels = ops.convert_to_tensor(y_true)
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 1:
        raise ValueError(
            "Expected `y_true` to be integer labels of shape (batch,) or (batch, 1). "
            f"Received: y_true with shape {tuple(labels.shape)}")
    return labels


def check_batch_sizes(labels, logits):
    """`labels` after checking that it has as many rows as `logits`.

    Known (static) batch sizes are compared in Python (ValueError); unknown ones
    in the graph on TensorFlow (InvalidArgumentError outside XLA).
    """
    labels_batch, logits_batch = labels.shape[0], logits.shape[0]
    if labels_batch is not None and logits_batch is not None:
        if labels_batch != logits_batch:
            raise ValueError(
                "Expected `y_true` and `y_pred` to hold the same number of examples. "
                f"Received: y_true with {labels_batch} labels, y_pred with shape {tuple(logits.shape)}")
        return labels
    if keras.backend.backend() != "tensorflow":
        return labels
    import tensorflow as tf

    check = tf.debugging.assert_equal(
        tf.shape(labels)[0], tf.shape(logits)[0],
        message="Expected `y_true` and `y_pred` to hold the same number of examples. Received (labels, logits):")
    with tf.control_dependencies([check]):
        return tf.identity(labels)


def labels_and_validity(labels, num_classes):
    """int32 labels (asserted in [0, num_classes) outside XLA) and the boolean mask of the in-range ones."""
    labels = _checks.labels_in_range(ops.cast(labels, "int32"), num_classes, argument="y_true")
    valid = ops.logical_and(ops.greater_equal(labels, 0), ops.less(labels, num_classes))
    return labels, valid


def nan_where_invalid(per_example, valid):
    """`per_example` losses with NaN where the label is out of range (no gradient flows to those examples)."""
    return ops.where(valid, per_example, ops.full_like(per_example, float("nan")))
