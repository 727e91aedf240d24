"""Converting PyTorch-style (coupled) weight decay to Keras' decoupled `weight_decay`."""

from keras_longtail._internal import validation as _validation


def decoupled_weight_decay(weight_decay, momentum=0.0, learning_rate_ratio=1.0):
    """The Keras optimizer `weight_decay` that matches a PyTorch SGD `weight_decay`.

    PyTorch's SGD couples weight decay to the gradient: with learning rate η,
    momentum μ and decay λ_c it does b ← μ·b + (g + λ_c·w), w ← w − η·b.
    Keras optimizers decouple it: before each step, w ← w − η·λ_d·w, then the
    plain (momentum) update with g. The same number is not the same
    regularization:

    - Without momentum (μ = 0) the two updates are identical for λ_d = λ_c:
      w ← w·(1 − η·λ) − η·g in both.
    - With momentum, the coupled decay term goes through the momentum buffer, so
      a weight that changes slowly compared with 1/(1 − μ) steps is shrunk by
      η·λ_c/(1 − μ) per step (10× at μ = 0.9), while the decoupled decay shrinks
      it by η·λ_d. Matching the steady-state shrinkage gives
      λ_d = λ_c / (1 − μ). The updates still differ: the coupled decay lags
      (it is an exponential average of past weights), reacts to learning-rate
      changes through the buffer, and is also applied where gradients vanish.
    - If the Keras run uses a different learning rate η_d than the PyTorch run's
      η_c, the per-step shrinkage η_d·λ_d matches η_c·λ_c/(1 − μ) with
      λ_d = λ_c / (1 − μ) · η_c / η_d (`learning_rate_ratio` = η_c / η_d).

    Adam and AdamW differ further (Keras `Adam(weight_decay=...)` is AdamW-style
    decoupled decay, PyTorch `Adam(weight_decay=...)` is L2 in the gradient,
    rescaled by Adam's normalization); this conversion is for SGD only.

    Args:
        weight_decay: the coupled (PyTorch SGD) λ_c, >= 0.
        momentum: the SGD momentum μ in [0, 1). Defaults to `0.0`.
        learning_rate_ratio: η_c / η_d, the PyTorch run's learning rate over the
            Keras run's, > 0. Defaults to `1.0`.

    Returns:
        The decoupled λ_d for `keras.optimizers.SGD(weight_decay=...)`, as the
        float the formula gives (not rounded, so 0.05 may print as
        0.05000000000000001).

    Example:

    ```python
    # The weight-balancing paper's stage 1: PyTorch SGD lr 0.01, momentum 0.9, wd 5e-3.
    keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=decoupled_weight_decay(5e-3, 0.9))
    ```

    >>> print(f"{decoupled_weight_decay(5e-3, momentum=0.9):.6g}")  # 5e-3 / (1 - 0.9)
    0.05
    >>> print(f"{decoupled_weight_decay(5e-3, momentum=0.9, learning_rate_ratio=0.1):.6g}")  # same shrink at lr 0.1
    0.005
    >>> decoupled_weight_decay(1e-13)  # not rounded: tiny values survive
    1e-13

    References:
        - Loshchilov and Hutter, "Decoupled Weight Decay Regularization",
          ICLR 2019, arXiv:1711.05101.
    """
    weight_decay = _validation.check_float("weight_decay", weight_decay, minimum=0.0)
    momentum = _validation.check_float("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
    learning_rate_ratio = _validation.check_float("learning_rate_ratio", learning_rate_ratio, minimum=0.0,
                                                  min_inclusive=False)
    return weight_decay / (1.0 - momentum) * learning_rate_ratio
