"""Per-class MaxNorm: projects each class's classifier vector onto an L2 ball (weight balancing)."""

import numbers

import keras
import numpy as np
from keras import ops

from keras_longtail._internal import validation as _validation

# Norms below this are treated as zero (the vector is left as it is: it lies inside any ball).
_TINY = 1e-12


def _check_axis(axis):
    """`axis` as an int or a list of ints (plain JSON), or a TypeError naming it."""
    values = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if not values or any(isinstance(a, bool) or not isinstance(a, (numbers.Integral, np.integer)) for a in values):
        raise TypeError(f"Expected `axis` to be an integer or a list of integers. Received: axis={axis!r}")
    values = [int(a) for a in values]
    return values if isinstance(axis, (list, tuple)) else values[0]


def _check_axis_fits(axis, ndim, shape):
    """`axis` (int or list) as a tuple of non-negative axes of an `ndim`-D kernel, or a ValueError."""
    axes = axis if isinstance(axis, list) else [axis]
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(
            f"Expected `axis` within the {ndim} axes of the kernel (from {-ndim} to {ndim - 1}). "
            f"Received: axis={axis!r} for a kernel of shape {tuple(shape)}")
    return tuple(sorted({a % ndim for a in axes}))


def _norms(kernel, axis):
    """Per-class L2 norms of `kernel` (numpy), flattened to one value per class."""
    kernel = np.asarray(ops.convert_to_numpy(kernel), dtype=np.float64)
    axes = _check_axis_fits(axis, kernel.ndim, kernel.shape)
    return np.sqrt(np.sum(np.square(kernel), axis=axes)).reshape(-1)


@keras.saving.register_keras_serializable(package="keras_longtail")
class PerClassMaxNorm(keras.constraints.Constraint):
    """Projects every class vector of a classifier kernel onto the L2 ball of radius δ.

    The MaxNorm constraint of weight balancing (paper Eq. 4), enforced by
    projected gradient descent (Eq. 5): after an update, each class vector θ_k
    (a column of a Dense kernel of shape `(features, classes)`) becomes

    θ_k ← min(1, δ / ‖θ_k‖₂) · θ_k

    Vectors inside the ball are returned unchanged (bit for bit); vectors outside
    are scaled onto its surface. Used as `kernel_constraint`, Keras applies it
    after every optimizer step (on every backend, inside the compiled step, so
    under `tf.distribute` and `jit_compile=True` too). The paper's code projects
    once per epoch instead: use the `PerClassMaxNormProjection` callback for that.

    The paper sets δ relative to the first-stage classifier's per-class norms
    r_k: δ = min r + thresh · (max r − min r), thresh = 0.1, i.e. just above the
    smallest norm, so that the head classes are capped and the tail classes may
    grow up to them. `PerClassMaxNorm.from_kernel(kernel, thresh=0.1)` builds
    the constraint that way.

    Difference from `keras.constraints.MaxNorm(max_value, axis=0)`: with the same
    radius and axis the projection is the same (Keras also divides by
    `norm + 1e-7`, so it shrinks vectors inside the ball by a factor
    norm/(norm + 1e-7)). What a port of the paper misses with it is δ: Keras
    takes an absolute value (default 2), which usually lies above every class
    norm of a trained classifier, so nothing is ever projected and the
    constraint has no effect. δ must come from the classifier's own norms (here
    `from_kernel`), and the paper's code projects per epoch, not per step.

    Args:
        max_norm: the radius δ, > 0.
        axis: axis (or list of axes) over which each class vector's norm is
            taken; the remaining axes index the classes. Defaults to `0`, right
            for a Dense kernel `(features, classes)`; use `[0, 1, 2]` for a
            Conv2D kernel `(rows, cols, in, out)`.

    Raises:
        TypeError: when called on a kernel that is not floating point (the
            projection needs fractional scales).
        ValueError: when `axis` does not fit the kernel's rank, and in
            `from_kernel` when the kernel holds NaN or infinity.

    Example:

    ```python
    classifier = model.get_layer("classifier")
    constraint = PerClassMaxNorm.from_kernel(classifier.kernel, thresh=0.1)
    classifier.kernel.constraint = constraint   # projected after every step
    ```

    >>> kernel = np.array([[3.0, 0.3], [4.0, 0.4]], "float32")  # class norms 5 and 0.5 (a float kernel)
    >>> np.asarray(PerClassMaxNorm(max_norm=1.0)(kernel)).round(3)
    array([[0.6, 0.3],
           [0.8, 0.4]], dtype=float32)
    >>> round(PerClassMaxNorm.from_kernel(kernel, thresh=0.1).max_norm, 6)  # 0.5 + 0.1 * (5 - 0.5)
    0.95

    References:
        - Alshammari et al., "Long-Tailed Recognition via Weight Balancing",
          CVPR 2022, arXiv:2203.14197 (Eq. 4-5).
    """

    def __init__(self, max_norm, axis=0):
        self.max_norm = _validation.check_float("max_norm", max_norm, minimum=0.0, min_inclusive=False)
        self.axis = _check_axis(axis)

    @classmethod
    def from_kernel(cls, kernel, thresh=0.1, axis=0):
        """The constraint with δ = min r + thresh · (max r − min r) from `kernel`'s per-class norms r.

        Args:
            kernel: a trained classifier kernel (array, tensor or variable).
            thresh: position of δ between the smallest (0) and the largest (1)
                class norm, in [0, 1]. Defaults to `0.1` (the paper's code).
            axis: as in the constructor. Defaults to `0`.

        Returns:
            A `PerClassMaxNorm`.
        """
        thresh = _validation.check_float("thresh", thresh, minimum=0.0, maximum=1.0)
        axis = _check_axis(axis)
        norms = _norms(kernel, axis)
        if not np.all(np.isfinite(norms)):
            raise ValueError(
                "Expected a kernel with finite values to set `max_norm` from. "
                f"Received per-class norms {norms.tolist()}")
        max_norm = float(norms.min() + thresh * (norms.max() - norms.min()))
        if not max_norm > 0.0:
            raise ValueError(
                "Expected a kernel with at least one non-zero class vector to set `max_norm` from. "
                f"Received per-class norms {norms.tolist()}")
        return cls(max_norm=max_norm, axis=axis)

    def __call__(self, w):
        w = ops.convert_to_tensor(w)
        dtype = keras.backend.standardize_dtype(w.dtype)
        if not keras.backend.is_float_dtype(dtype):
            # An integer kernel would round the scale min(1, δ/‖θ_k‖) (< 1 outside the ball) to 0.
            raise TypeError(f"Expected a floating-point kernel. Received: w with dtype={dtype}")
        _check_axis_fits(self.axis, len(w.shape), w.shape)
        norms = ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True))
        scale = ops.minimum(1.0, self.max_norm / ops.maximum(norms, _TINY))
        return w * ops.cast(scale, w.dtype)

    def get_config(self):
        return {"max_norm": self.max_norm, "axis": self.axis}
