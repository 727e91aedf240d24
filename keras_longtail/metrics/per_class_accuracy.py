"""Per-class accuracy."""

import keras
from keras import ops

from keras_longtail._internal import checks as _checks
from keras_longtail._internal import validation as _validation


@keras.saving.register_keras_serializable(package="keras_longtail")
class PerClassAccuracy(keras.metrics.Metric):
    """Accuracy of each class, from per-class correct and total counts.

    `acc_k = sum_i w_i [y_i = k][argmax p_i = k] / sum_i w_i [y_i = k]`

    The two count vectors are sum-aggregated variables, so the result is the same
    under `tf.distribute` as on one device. A class with no example so far has
    accuracy 0 (never NaN).

    Args:
        num_classes: number of classes, >= 2.
        name: name of the metric. Defaults to `"per_class_accuracy"`.
        dtype: dtype of the counts. Defaults to `None` (float32).

    Call arguments (`update_state`):
        y_true: integer labels of shape `(batch,)` or `(batch, 1)`, or one-hot
            labels of shape `(batch, num_classes)`. Labels must lie in
            `[0, num_classes)`.
        y_pred: scores (logits or probabilities) of shape `(batch, num_classes)`.
        sample_weight: optional per-example weights.

    Returns:
        A float vector of shape `(num_classes,)`.

    Example:

    >>> metric = PerClassAccuracy(num_classes=3)
    >>> metric.update_state([0, 0, 1, 2], [[1., 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]])
    >>> [float(a) for a in metric.result()]
    [0.5, 1.0, 0.0]
    """

    def __init__(self, num_classes, name="per_class_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
        self.correct = self.add_variable(
            shape=(self.num_classes,), initializer="zeros", dtype=self.dtype, aggregation="sum",
            name="correct")
        self.total = self.add_variable(
            shape=(self.num_classes,), initializer="zeros", dtype=self.dtype, aggregation="sum",
            name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if len(y_pred.shape) < 1 or y_pred.shape[-1] != self.num_classes:
            raise ValueError(
                f"Expected `y_pred` of shape (..., {self.num_classes}). Received shape {y_pred.shape}")
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == self.num_classes:
            y_true = ops.argmax(y_true, axis=-1)
        elif len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        labels = _checks.labels_in_range(labels, self.num_classes)
        predicted = ops.reshape(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), (-1,))
        one_hot = ops.one_hot(labels, self.num_classes, dtype=self.dtype)
        hit = ops.cast(ops.equal(labels, predicted), self.dtype)
        if sample_weight is not None:
            weight = ops.reshape(ops.cast(sample_weight, self.dtype), (-1,))
            weight = ops.broadcast_to(weight, ops.shape(labels))
            one_hot = one_hot * weight[:, None]
        self.correct.assign_add(ops.sum(one_hot * hit[:, None], axis=0))
        self.total.assign_add(ops.sum(one_hot, axis=0))

    def per_class(self):
        """Per-class accuracy vector (0 for classes not seen yet)."""
        return ops.divide_no_nan(self.correct, self.total)

    def result(self):
        return self.per_class()

    def reset_state(self):
        self.correct.assign(ops.zeros(self.correct.shape, dtype=self.correct.dtype))
        self.total.assign(ops.zeros(self.total.shape, dtype=self.total.dtype))

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}
