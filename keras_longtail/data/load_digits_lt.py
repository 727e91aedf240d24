"""Digits-LT: scikit-learn's bundled 8x8 digits made long-tailed (no download)."""

import numpy as np

from keras_longtail._internal import validation as _validation
from keras_longtail.data import _build
from keras_longtail.data import _sources

TEST_PER_CLASS = 30


def load_digits_lt(imbalance_factor=20, kind="exp", seed=None):
    """Loads Digits-LT, the embedded data set of the default `keras-longtail train` job.

    scikit-learn ships 1,797 8x8 handwritten digits (174-183 per class) inside
    the package, so this needs no download. The last 30 images of each class (in
    file order) form a balanced test split; the rest (144-153 per class) is
    subsampled with `long_tailed` to n_i = floor(144 * IF^(-i/9)). With the default
    IF 20 that is 144, 103, 74, 53, 38, 27, 19, 14, 10, 7 images: 2 Many, 4 Medium
    and 4 Few classes, so the shot table has all three rows.

    Images are float32 in [0, 1], shape (8, 8, 1); labels int32.

    Args:
        imbalance_factor: ratio n_max / n_min, >= 1. Defaults to 20.
        kind: `"exp"` or `"step"` profile. Defaults to `"exp"`.
        seed: `None` for the deterministic first-n rule, or an int. Defaults to `None`.

    Returns:
        A `LongTailedData(train, test, class_counts, class_names)`.

    Example:

    >>> data = load_digits_lt()
    >>> data.class_counts
    [144, 103, 74, 53, 38, 27, 19, 14, 10, 7]
    """
    _validation.check_float("imbalance_factor", imbalance_factor, minimum=1.0)
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)[..., None]
    labels = digits.target.astype(np.int64)
    test_mask = np.zeros(len(labels), dtype=bool)
    for k in range(10):
        test_mask[np.flatnonzero(labels == k)[-TEST_PER_CLASS:]] = True
    source = _sources.Source(
        "digits", images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask],
        [str(k) for k in range(10)], (8, 8, 1), max_value=16.0, where="sklearn.datasets.load_digits",
    )
    return _build.build_long_tailed(source, imbalance_factor, kind=kind, seed=seed)
