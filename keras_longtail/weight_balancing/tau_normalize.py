"""τ-normalization of a trained classifier (Kang et al., 2020)."""

import keras
import numpy as np
from keras import ops

from keras_longtail._internal import validation as _validation
from keras_longtail.weight_balancing.per_class_max_norm import _check_axis

_TINY = 1e-12


def tau_normalize(layer_or_kernel, tau, axis=0):
    """Divides every class vector of a classifier by its L2 norm to the power τ.

    θ_k ← θ_k / ‖θ_k‖₂^τ

    τ = 0 leaves the classifier unchanged, τ = 1 is L2-normalization (every class
    vector gets unit norm, the weight-balancing paper's "+ L2norm"), and values in
    between (or above: the weight-balancing demo uses τ = 1.9) shrink the large
    head-class vectors more than the small tail-class ones. A post-hoc, training-
    free alternative to retraining the classifier (`retrain_classifier`); tune τ
    on held-out data. The bias is left as it is (codes differ: some drop it; set
    `layer.bias` to zeros for that). Zero vectors stay zero.

    It lives in `keras_longtail.weight_balancing` (and is exported from
    `keras_longtail.training`) next to `retrain_classifier`: both are
    second-stage classifier adjustments of the decoupled two-stage recipe, applied
    to a trained model rather than used inside one.

    Args:
        layer_or_kernel: a layer with a `kernel` (e.g. the Dense `"classifier"`),
            normalized in place, or a kernel (array, tensor or variable), of which
            a normalized copy is returned.
        tau: the exponent τ >= 0.
        axis: axis (or axes) of one class vector in the kernel. Defaults to `0`
            (Dense kernel `(features, classes)`).

    Returns:
        The normalized kernel as a tensor (for a layer, also assigned to its
        kernel).

    Example:

    ```python
    tau_normalize(model.get_layer("classifier"), tau=1.0)   # in place
    ```

    >>> kernel = np.array([[3.0, 0.0], [4.0, 2.0]], "float32")  # class norms 5 and 2
    >>> np.asarray(tau_normalize(kernel, tau=1.0))
    array([[0.6, 0. ],
           [0.8, 1. ]], dtype=float32)

    References:
        - Kang et al., "Decoupling Representation and Classifier for Long-Tailed
          Recognition", ICLR 2020, arXiv:1910.09217.
        - Alshammari et al., "Long-Tailed Recognition via Weight Balancing",
          CVPR 2022, arXiv:2203.14197.
    """
    tau = _validation.check_float("tau", tau, minimum=0.0)
    axis = _check_axis(axis)
    layer = layer_or_kernel if isinstance(layer_or_kernel, keras.layers.Layer) else None
    if layer is not None and getattr(layer, "kernel", None) is None:
        raise ValueError(
            f"Expected `layer_or_kernel` to be a layer with a `kernel` or a kernel. Received: {layer_or_kernel!r}")
    kernel = ops.convert_to_tensor(layer.kernel if layer is not None else layer_or_kernel)
    norms = ops.sqrt(ops.sum(ops.square(kernel), axis=axis, keepdims=True))
    normalized = kernel / ops.power(ops.maximum(norms, _TINY), tau)
    if layer is not None:
        layer.kernel.assign(normalized)
    return normalized
