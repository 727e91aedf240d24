"""Shared handling of dense (per-pixel) targets: shapes and the ground-truth mask."""

from keras import ops


def standardize_depth_maps(y_true, y_pred):
    """(y_true, y_pred) as float32 (batch, ...) maps of equal shape, a trailing channel of 1 dropped."""
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    if len(y_true.shape) == len(y_pred.shape) + 1 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if len(y_pred.shape) == len(y_true.shape) + 1 and y_pred.shape[-1] == 1:
        y_pred = ops.squeeze(y_pred, axis=-1)
    if len(y_true.shape) != len(y_pred.shape) or len(y_true.shape) < 2 or any(
            a is not None and b is not None and a != b for a, b in zip(y_true.shape, y_pred.shape)):
        raise ValueError(
            "Expected `y_true` and `y_pred` to be (batch, ...) depth maps of the same shape (a trailing "
            f"channel of 1 allowed). Received shapes y_true={y_true.shape}, y_pred={y_pred.shape}")
    return y_true, y_pred


def valid_pixels(y_true):
    """The ground-truth mask: 1.0 where `y_true` > 0 and finite, else 0.0 (same shape)."""
    y_true = ops.convert_to_tensor(y_true)
    return ops.cast(ops.logical_and(y_true > 0, ops.isfinite(y_true)), "float32")
