"""The phase-I / phase-II class split of asynchronous dual-phase training."""

import collections

import numpy as np

from keras_longtail._internal import validation as _validation
from keras_longtail.data import shot_splits

FrequencySplit = collections.namedtuple("FrequencySplit", ["phase_one", "phase_two", "phase_one_labels"])
FrequencySplit.__doc__ = """Result of `split_by_frequency`.

Attributes:
    phase_one: the C1 data-rich class ids, sorted by decreasing count (ties by id).
    phase_two: the other C - C1 class ids, sorted the same way.
    phase_one_labels: dict mapping each phase-I class id to its label in the
        truncated phase-I classifier (its position in `phase_one`).

Example:

>>> split_by_frequency([10, 200, 90], threshold=2)
FrequencySplit(phase_one=[1, 2], phase_two=[0], phase_one_labels={1: 0, 2: 1})
"""


def split_by_frequency(class_counts, threshold=None):
    """Splits classes into the data-rich phase-I classes and the phase-II rest.

    The C1 = `threshold` classes with the most training examples are learned
    first (phase I, paper §3.2.1); the C − C1 others join in phase II. Classes
    are ranked by their counts, not by their ids, so the class order of the data
    set does not matter: ties keep the smaller id first.

    The default threshold is the paper's rule (Appendix A): the number of Many-
    plus Medium-shot classes (more than 20 training examples, `shot_splits`),
    70 on CIFAR-100-LT IF 100. When that leaves no phase-II class (no Few-shot
    class, as on CIFAR-10-LT and Fashion-MNIST-LT with IF 100, whose smallest
    classes hold 50 and 60 images) the default falls back to the number of
    Many-shot classes (8 on both); when that is also 0 or C, pass `threshold`.

    Args:
        class_counts: per-class training counts (sequence of non-negative ints).
        threshold: C1, the number of phase-I classes, an int in [1, C − 1].
            Defaults to `None` (the rule above).

    Returns:
        `FrequencySplit(phase_one, phase_two, phase_one_labels)`.

    Example:

    >>> split = split_by_frequency([7, 300, 45, 12, 150])
    >>> split.phase_one, split.phase_two
    ([1, 4, 2], [3, 0])
    >>> split.phase_one_labels
    {1: 0, 4: 1, 2: 2}
    >>> split_by_frequency([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]).phase_two
    [8, 9]

    References:
        - "Asynchronous Modeling: A Dual-Phase Perspective for Long-Tailed
          Recognition", ICLR 2021 submission (OpenReview, anonymous).
    """
    counts = _validation.check_class_counts("class_counts", class_counts)
    num_classes = len(counts)
    if threshold is None:
        splits = shot_splits(counts)
        threshold = len(splits.many) + len(splits.medium)
        if threshold == num_classes:
            threshold = len(splits.many)
        if not 0 < threshold < num_classes:
            raise ValueError(
                "The default threshold (Many + Medium classes, or Many classes when no class is "
                f"Few-shot) leaves an empty phase: {len(splits.many)} Many, {len(splits.medium)} Medium, "
                f"{len(splits.few)} Few classes. Pass `threshold` in [1, {num_classes - 1}]. "
                f"Received: class_counts={counts}")
    else:
        threshold = _validation.check_int("threshold", threshold)
        if not 0 < threshold < num_classes:
            raise ValueError(
                f"Expected `threshold` in (0, {num_classes}) (the number of phase-I classes; both "
                f"phases need a class). Received: threshold={threshold}")
    order = [int(k) for k in np.argsort(-np.asarray(counts), kind="stable")]
    phase_one, phase_two = order[:threshold], order[threshold:]
    return FrequencySplit(phase_one, phase_two, {k: label for label, k in enumerate(phase_one)})
