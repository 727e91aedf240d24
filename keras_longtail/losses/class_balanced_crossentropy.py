"""Class-balanced softmax cross-entropy (Cui et al., 2019)."""

import keras
import numpy as np
from keras import ops

from keras_longtail._internal import checks as _checks
from keras_longtail._internal import validation as _validation
from keras_longtail.losses.class_balanced_weights import class_balanced_weights


@keras.saving.register_keras_serializable(package="keras_longtail")
class ClassBalancedCrossentropy(keras.losses.Loss):
    """Softmax cross-entropy weighted per class by the effective number of samples.

    For an example of class y with logits z (C classes):

    ℓ = −w_y · log softmax(z)_y,    w = class_balanced_weights(class_counts, β)

    where w_k ∝ (1 − β) / (1 − β^{n_k}) and Σ_k w_k = C. With the default
    reduction the batch loss is the mean of ℓ over the batch (not divided by Σ
    w_y, unlike PyTorch's `CrossEntropyLoss(weight=...)`), as in the
    class-balanced paper's official softmax variant. β = 0 is plain
    cross-entropy. Use it with the data set's class counts, never per-batch
    counts (a class absent from a batch would get an infinite weight).

    The weight-balancing paper trains its second-stage classifier with this loss
    (β = 0.9999). Its code uses a port that applies binary cross-entropy to the
    softmax probabilities (mean over batch and classes): a different loss, about
    1/C of this one's scale, so its weight-decay value does not carry over
    unchanged.

    Args:
        class_counts: training count of each class (positive integers).
        beta: β in [0, 1). Defaults to `0.9999`.
        from_logits: whether `y_pred` holds logits (else probabilities).
            Defaults to `True`.
        reduction: reduction of the per-example losses. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"class_balanced_crossentropy"`.
        dtype: dtype of the loss computation. Defaults to `None` (float32).

    Call arguments:
        y_true: integer labels of shape `(batch,)` or `(batch, 1)` in `[0, C)`.
        y_pred: logits (or probabilities) of shape `(batch, C)`.
        sample_weight: optional per-example weights, multiplied with w_y.

    Returns:
        The reduced loss (per-example losses with `reduction=None`).

    Example:

    ```python
    model.compile("sgd", loss=ClassBalancedCrossentropy(class_counts, beta=0.9999))
    ```

    >>> loss = ClassBalancedCrossentropy([100, 10, 1], beta=0.999, reduction=None)
    >>> np.asarray(loss([0, 2], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])).round(3)  # w_y · log 3
    array([0.031, 2.967], dtype=float32)

    References:
        - Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
          CVPR 2019, arXiv:1901.05555.
        - Alshammari et al., "Long-Tailed Recognition via Weight Balancing",
          CVPR 2022, arXiv:2203.14197 (second stage).
    """

    def __init__(
        self,
        class_counts,
        beta=0.9999,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="class_balanced_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.class_counts = _validation.check_class_counts("class_counts", class_counts, allow_zero=False)
        self.beta = _validation.check_float("beta", beta, minimum=0.0, maximum=1.0, max_inclusive=False)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"Expected `from_logits` to be a bool. Received: from_logits={from_logits!r}")
        self.from_logits = bool(from_logits)
        self.class_weights = class_balanced_weights(self.class_counts, self.beta).astype("float32")

    def call(self, y_true, y_pred):
        num_classes = len(self.class_counts)
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_pred.shape) != 2 or y_pred.shape[-1] != num_classes:
            raise ValueError(
                f"Expected `y_pred` of shape (batch, {num_classes}), one column per entry of `class_counts`. "
                f"Received shape {y_pred.shape}")
        labels = ops.convert_to_tensor(y_true)
        if len(labels.shape) == 2 and labels.shape[-1] == 1:
            labels = ops.squeeze(labels, axis=-1)
        if len(labels.shape) != 1:
            raise ValueError(
                f"Expected `y_true` to be integer labels of shape (batch,) or (batch, 1). Received shape {labels.shape}")
        labels = _checks.labels_in_range(ops.cast(labels, "int32"), num_classes, argument="y_true")
        cross_entropy = keras.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=self.from_logits)
        weights = ops.take(ops.convert_to_tensor(self.class_weights), labels)
        return ops.cast(weights * ops.cast(cross_entropy, "float32"), self.dtype)

    def get_config(self):
        return {
            "class_counts": list(self.class_counts),
            "beta": self.beta,
            "from_logits": self.from_logits,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self.dtype,
        }
