"""The GradTail toy data set: a common and a rare Gaussian."""

import numpy as np

from keras_longtail._internal import validation as _validation


def two_gaussians(num_common=10000, num_rare=400, rare_mean=(2.2, 2.2), rare_variance=0.5, seed=0):
    """Two 2-D Gaussians, a common class 0 and a rare class 1 (GradTail §4.1, App. B.1).

    Class 0: `num_common` points from N(0, I). Class 1: `num_rare` points from
    N(rare_mean, rare_variance * I). The classes overlap, so a plain classifier
    sacrifices the rare one.

    Args:
        num_common: points of class 0. Defaults to 10,000.
        num_rare: points of class 1. Defaults to 400.
        rare_mean: mean of class 1, two numbers. Defaults to `(2.2, 2.2)`.
        rare_variance: isotropic variance of class 1, > 0. Defaults to 0.5.
        seed: seed of the numpy generator. Defaults to 0.

    Returns:
        `(x, y)`: float32 array (N, 2) and int32 array (N,), common points first.

    Example:

    >>> x, y = two_gaussians(seed=0)
    >>> x.shape, int(y.sum())
    ((10400, 2), 400)
    """
    num_common = _validation.check_int("num_common", num_common, minimum=1)
    num_rare = _validation.check_int("num_rare", num_rare, minimum=1)
    rare_variance = _validation.check_float("rare_variance", rare_variance, minimum=0.0, min_inclusive=False)
    rare_mean = np.asarray(rare_mean, dtype=np.float64)
    if rare_mean.shape != (2,) or not np.all(np.isfinite(rare_mean)):
        raise ValueError(f"Expected `rare_mean` to be two finite numbers. Received: rare_mean={rare_mean.tolist()}")
    rng = np.random.default_rng(_validation.check_int("seed", seed))
    common = rng.normal(0.0, 1.0, size=(num_common, 2))
    rare = rare_mean + rng.normal(0.0, np.sqrt(rare_variance), size=(num_rare, 2))
    x = np.concatenate([common, rare]).astype(np.float32)
    y = np.concatenate([np.zeros(num_common), np.ones(num_rare)]).astype(np.int32)
    return x, y
