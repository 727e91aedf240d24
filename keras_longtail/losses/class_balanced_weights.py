"""Class-balanced weights from the effective number of samples (Cui et al., 2019)."""

import numpy as np

from keras_longtail._internal import validation as _validation


def class_balanced_weights(class_counts, beta=0.9999):
    """Per-class weights inversely proportional to the effective number of samples.

    With n_k training examples of class k and C classes, the effective number is
    E_k = (1 − β^{n_k}) / (1 − β) and the weight of class k is

    w_k = C · (1 / E_k) / Σ_j (1 / E_j)

    so the weights sum to C. β = 0 gives uniform weights (all 1); as β → 1,
    E_k → n_k and the weights approach inverse class frequency (normalized to
    sum to C). Computed in float64 (β^{n_k} for β = 0.9999 and large counts).

    Args:
        class_counts: training count of each class: positive integers (a class
            with no example has no effective number and is rejected).
        beta: β in [0, 1). Defaults to `0.9999` (the value of the class-balanced
            and weight-balancing papers' CIFAR experiments).

    Returns:
        A float64 numpy array of shape `(C,)` summing to C.

    Example:

    >>> class_balanced_weights([100, 10, 1], beta=0.0)
    array([1., 1., 1.])
    >>> class_balanced_weights([100, 10, 1], beta=0.999).round(3)
    array([0.028, 0.271, 2.7  ])

    References:
        - Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
          CVPR 2019, arXiv:1901.05555 (Eq. 3-4).
    """
    counts = np.asarray(_validation.check_class_counts("class_counts", class_counts, allow_zero=False),
                        dtype=np.float64)
    beta = _validation.check_float("beta", beta, minimum=0.0, maximum=1.0, max_inclusive=False)
    if beta == 0.0:
        inverse_effective = np.ones_like(counts)
    else:
        # 1 / E_k = (1 − β) / (1 − β^{n_k}); expm1 keeps 1 − β^{n_k} accurate for β close to 1.
        inverse_effective = (1.0 - beta) / -np.expm1(counts * np.log(beta))
    return inverse_effective / inverse_effective.sum() * len(counts)
