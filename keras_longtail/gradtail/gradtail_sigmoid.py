"""GradTail's default (sigmoid-shaped) weight activation."""

import keras
from keras import ops

from keras_longtail._internal import validation as _validation
from keras_longtail._internal.defaults import GRADTAIL_MAX_WEIGHT
from keras_longtail.gradtail.gradtail_activation import GradTailActivation


@keras.saving.register_keras_serializable(package="keras_longtail")
class GradTailSigmoid(GradTailActivation):
    """Sigmoid-shaped GradTail weight: f(x) = 1 + 2·(M − 1)·sigmoid(−B·x).

    With x = |θ/σ − p| ≥ 0 (distance of the normalized gradient agreement to
    the pivot), M = `max_weight` and B = `sharpness`:

    f(x) = 1 + 2·(M − 1) / (1 + exp(B·x))

    so f(0) = M, f(x) → 1 as x → ∞, and f is strictly decreasing for M > 1
    (f ≡ 1 for M = 1: plain training). Half of the extra weight is left at
    x = ln(3)/B (≈ 0.22 for the default B = 5, i.e. about a fifth of the mean
    |θ|/σ away from the pivot).

    The paper prints f(x) = 1 + A/(1 − e^{−Bx}), which is infinite at x = 0
    and tends to 1 + A, contradicting its own requirements f: [0, ∞] → [1, ∞]
    monotone with the largest weight at the pivot; we ship the sigmoid shape
    those requirements describe (A = 2(M − 1), sign of the exponent fixed).

    Args:
        max_weight: the weight M at the pivot, >= 1. Paper: 15 for the toy
            example and the depth model, 3 for ImageNet. Defaults to `3.0`.
        sharpness: B > 0, how fast the weight falls off with the distance.
            Defaults to `5.0`.

    Example:

    >>> f = GradTailSigmoid(max_weight=3.0, sharpness=5.0)
    >>> [round(float(w), 4) for w in f([0.0, 0.1, 1.0, 10.0])]
    [3.0, 2.5102, 1.0268, 1.0]

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using
          Gradient-based Sample Weighting", arXiv:2201.05938 (2022).
    """

    def __init__(self, max_weight=GRADTAIL_MAX_WEIGHT, sharpness=5.0):
        self.max_weight = _validation.check_float("max_weight", max_weight, minimum=1.0)
        self.sharpness = _validation.check_float("sharpness", sharpness, minimum=0.0, min_inclusive=False)

    def call(self, distance):
        return 1.0 + 2.0 * (self.max_weight - 1.0) * ops.sigmoid(-self.sharpness * distance)

    def get_config(self):
        return {"max_weight": self.max_weight, "sharpness": self.sharpness}
