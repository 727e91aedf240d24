"""L1 loss on the pixels that have ground truth."""

import keras
from keras import ops

from keras_longtail._internal.dense import standardize_depth_maps
from keras_longtail._internal.dense import valid_pixels


@keras.saving.register_keras_serializable(package="keras_longtail")
class MaskedL1(keras.losses.Loss):
    """Mean absolute error over the pixels that have ground truth (GradTail App. B.3).

    Ground truth is a depth map with 0 (or any value <= 0, or NaN) where there is no
    measurement, the layout of `load_waymo_depth` and `synthetic_depth_scenes`.
    With the mask m_ip = [y_ip > 0] of example i, the per-example loss is the mean
    over its valid pixels:

    ℓ_i = Σ_p m_ip·|ŷ_ip − y_ip| / max(Σ_p m_ip, 1)

    (0 for an example without ground truth), then reduced over the batch (by
    default the mean over examples, `"sum_over_batch_size"`). Pixels without
    ground truth never count, whatever the prediction there (even NaN). Because
    each example is normalized by its own pixel count, the loss of a global batch
    does not depend on how it is split over replicas. `sample_weight` weighs
    examples, shape `(batch,)`.

    Args:
        reduction: reduction of the per-example losses. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"masked_l1"`.
        dtype: dtype of the loss computation. Defaults to `None` (float32).

    Call arguments:
        y_true: depth maps `(batch, H, W)` or `(batch, H, W, 1)`, 0 = no ground truth.
        y_pred: predicted depth maps of the same shape.
        sample_weight: optional per-example weights `(batch,)`.

    Returns:
        The reduced loss (per-example losses `(batch,)` with `reduction=None`).

    Example:

    ```python
    model.compile(keras.optimizers.Adam(2e-4), loss=MaskedL1())
    ```

    >>> import numpy as np
    >>> loss = MaskedL1(reduction=None)
    >>> y_true = [[[0.0, 10.0], [20.0, 0.0]]]     # two pixels with ground truth
    >>> y_pred = [[[99.0, 12.0], [17.0, 99.0]]]
    >>> np.asarray(loss(y_true, y_pred))  # (|12 - 10| + |17 - 20|) / 2
    array([2.5], dtype=float32)

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using Gradient-based
          Sample Weighting", arXiv:2201.05938.
    """

    def __init__(self, reduction="sum_over_batch_size", name="masked_l1", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def pixel_errors(self, y_true, y_pred):
        """(errors, mask): |ŷ − y| with 0 at pixels without ground truth, and the 0/1 mask; shape (batch, ...)."""
        y_true, y_pred = standardize_depth_maps(y_true, y_pred)
        mask = valid_pixels(y_true)
        errors = ops.where(mask > 0, ops.abs(y_pred - y_true), ops.zeros_like(y_pred))
        return errors, mask

    def call(self, y_true, y_pred):
        errors, mask = self.pixel_errors(y_true, y_pred)
        axes = tuple(range(1, len(errors.shape)))
        per_example = ops.sum(errors, axis=axes) / ops.maximum(ops.sum(mask, axis=axes), 1.0)
        return ops.cast(per_example, self.dtype)

    def get_config(self):
        return {"reduction": self.reduction, "name": self.name, "dtype": self.dtype}
