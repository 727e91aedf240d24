"""The intra-class margin loss of asynchronous dual-phase training (paper Eq. 9, L_intra)."""

import keras
from keras import ops

from keras_longtail._internal import validation as _validation
from keras_longtail._internal import sparse_labels as _sparse_labels


@keras.saving.register_keras_serializable(package="keras_longtail")
class IntraClassMarginLoss(keras.losses.Loss):
    """Hinge loss keeping the positive cosine score a margin above the hardest negative ones.

    For a cosine classifier with logits s·⟨w̄_k, z̄(x)⟩ (`CosineClassifier`), an
    example of class y has positive score ⟨w̄_y, z̄⟩ and negative scores ⟨w̄_k, z̄⟩,
    k ≠ y. The paper's L_intra (§3.2.2, the margin ranking loss of Hou et al.
    2019) sums a hinge over the K highest negative scores:

    L_intra(x) = Σ_{k=1}^{K} max(0, m − ⟨w̄_y, z̄(x)⟩ + ⟨w̄^k, z̄(x)⟩)

    where w̄^k is the class embedding with the k-th highest negative score. The
    scores are the logits divided by `scale`, which must equal the classifier's
    scale s. The paper states neither K nor m; the defaults are those of Hou et
    al. (K = 2, m = 0.5). `num_negatives=1` keeps only the highest negative
    score; `num_negatives=None` sums over all C − 1 other classes. In
    dual-phase training it is added to the cross-entropy of every example of
    the phase-II data (Eq. 9).

    Labels outside `[0, num_classes)` raise `InvalidArgumentError` in eager and
    graph execution; under `jit_compile=True` (XLA drops that check) their
    examples get a NaN loss and no gradient, so the reported loss is NaN.

    Args:
        margin: m, >= 0. Defaults to `0.5`.
        scale: the classifier's scale s, > 0 (the logits are s·cosines).
            Defaults to `16.0` (`CosineClassifier`'s default).
        num_negatives: K, >= 1, or `None` for every other class. Must be at most
            C − 1. Defaults to `2`.
        reduction: reduction of the per-example losses. Defaults to
            `"sum_over_batch_size"` (the 1/|D| Σ of Eq. 9).
        name: name of the loss. Defaults to `"intra_class_margin_loss"`.
        dtype: dtype of the loss computation. Defaults to `None` (float32).

    Call arguments:
        y_true: integer labels of shape `(batch,)` or `(batch, 1)`.
        y_pred: cosine-classifier logits s·cos of shape `(batch, num_classes)`.
        sample_weight: optional per-example weights.

    Returns:
        The reduced loss (per-example losses with `reduction=None`).

    Example:

    ```python
    model.compile("sgd", loss=IntraClassMarginLoss(margin=0.5, scale=16.0))
    ```

    >>> import numpy as np
    >>> loss = IntraClassMarginLoss(margin=0.5, scale=10.0, num_negatives=1, reduction=None)
    >>> np.asarray(loss([0, 1], [[8.0, 5.0, 1.0], [2.0, 4.0, 3.0]])).round(4)  # max(0, .5 - .8 + .5), max(0, .5 - .4 + .3)
    array([0.2, 0.4], dtype=float32)

    References:
        - "Asynchronous Modeling: A Dual-Phase Perspective for Long-Tailed
          Recognition", ICLR 2021 submission (OpenReview, anonymous), Eq. 9.
        - Hou et al., "Learning a Unified Classifier Incrementally via
          Rebalancing", CVPR 2019.
    """

    def __init__(self, margin=0.5, scale=16.0, num_negatives=2, reduction="sum_over_batch_size",
                 name="intra_class_margin_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.margin = _validation.check_float("margin", margin, minimum=0.0)
        self.scale = _validation.check_float("scale", scale, minimum=0.0, min_inclusive=False)
        self.num_negatives = (None if num_negatives is None
                              else _validation.check_int("num_negatives", num_negatives, minimum=1))

    def call(self, y_true, y_pred):
        scores = ops.convert_to_tensor(y_pred) / self.scale
        if len(scores.shape) != 2 or scores.shape[-1] is None or scores.shape[-1] < 2:
            raise ValueError(f"Expected `y_pred` to be logits of shape (batch, num_classes >= 2). "
                             f"Received: y_pred with shape {tuple(scores.shape)}")
        num_classes = scores.shape[-1]
        if self.num_negatives is not None and self.num_negatives > num_classes - 1:
            raise ValueError(f"Expected `num_negatives` <= num_classes - 1 = {num_classes - 1}. "
                             f"Received: num_negatives={self.num_negatives}")
        labels = _sparse_labels.check_batch_sizes(_sparse_labels.squeeze_labels(y_true), scores)
        labels, valid = _sparse_labels.labels_and_validity(labels, num_classes)
        one_hot = ops.one_hot(labels, num_classes, dtype=scores.dtype)
        positive = ops.sum(scores * one_hot, axis=-1, keepdims=True)
        hinge = ops.relu(self.margin - positive + scores)  # (batch, C); the positive column is masked below
        if self.num_negatives is None:
            per_example = ops.sum(hinge * (1.0 - one_hot), axis=-1)
        else:
            # The K largest negative scores give the K largest hinges (the hinge grows with the score).
            negatives = ops.where(one_hot > 0, ops.full_like(scores, -1e9), scores)
            hardest, _ = ops.top_k(negatives, self.num_negatives, sorted=False)
            per_example = ops.sum(ops.relu(self.margin - positive + hardest), axis=-1)
        return _sparse_labels.nan_where_invalid(per_example, valid)

    def get_config(self):
        return {
            "margin": self.margin,
            "scale": self.scale,
            "num_negatives": self.num_negatives,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self.dtype,
        }
