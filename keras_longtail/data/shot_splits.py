"""Many / Medium / Few class splits by training count."""

import collections

from keras_longtail._internal import validation as _validation

ShotSplits = collections.namedtuple("ShotSplits", ["many", "medium", "few"])
ShotSplits.__doc__ = """Class indices of each shot split: `many`, `medium` and `few` (lists of ints)."""


def shot_splits(class_counts, many=100, few=20):
    """Splits classes into Many / Medium / Few shots by their training counts.

    The convention of Liu et al. (OLTR, 2019) used by every paper in this toolkit:
    Many: n_k > `many`; Medium: `few` <= n_k <= `many`; Few: n_k < `few`.
    CIFAR-100-LT with imbalance factor 100 gives 35 / 35 / 30 classes;
    Fashion-MNIST-LT with factor 100 (6,000 ... 60) has no Few class.

    Args:
        class_counts: per-class training counts (sequence of non-negative ints).
        many: a class with more than `many` examples is Many-shot. Defaults to 100.
        few: a class with fewer than `few` examples is Few-shot. Defaults to 20.

    Returns:
        `ShotSplits(many, medium, few)`, three lists of class indices (possibly empty).

    Example:

    >>> shot_splits([500, 120, 100, 20, 19, 5])
    ShotSplits(many=[0, 1], medium=[2, 3], few=[4, 5])
    """
    counts = _validation.check_class_counts("class_counts", class_counts, min_classes=1)
    many = _validation.check_int("many", many, minimum=0)
    few = _validation.check_int("few", few, minimum=0)
    if few > many:
        raise ValueError(f"Expected `few` <= `many`. Received: few={few}, many={many}")
    return ShotSplits(
        many=[k for k, n in enumerate(counts) if n > many],
        medium=[k for k, n in enumerate(counts) if few <= n <= many],
        few=[k for k, n in enumerate(counts) if n < few],
    )
