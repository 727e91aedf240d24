"""Per-class counts of a long-tailed data set."""

from keras_longtail._internal import validation as _validation


def imbalance_profile(num_classes, max_count, imbalance_factor, kind="exp"):
    """Per-class example counts of a long-tailed split, class 0 the head.

    `"exp"` is the standard CIFAR-LT profile (Cui et al. 2019; Cao et al. 2019):

    n_i = floor(max_count * imbalance_factor ** (-i / (num_classes - 1)))

    computed exactly as the reference code does
    (`int(max_count * (1 / imbalance_factor) ** (i / (num_classes - 1)))`), so
    CIFAR-100 with factor 100 gives 10,847 images (500 ... 5) and CIFAR-10 12,406.
    `"step"` keeps the first `num_classes // 2` classes at `max_count` and the rest
    at `floor(max_count / imbalance_factor)`.

    Args:
        num_classes: number of classes, at least 2.
        max_count: count of the head class (class 0), at least 1.
        imbalance_factor: ratio of the largest to the smallest count, >= 1.
            1 gives a balanced profile.
        kind: `"exp"` (exponential decay) or `"step"`. Defaults to `"exp"`.

    Returns:
        A list of `num_classes` Python ints.

    Raises:
        ValueError: when an argument is out of range, or when the smallest class
            would get no example (`max_count / imbalance_factor < 1`).

    Example:

    >>> counts = imbalance_profile(100, 500, 100)
    >>> counts[0], counts[-1], sum(counts)
    (500, 5, 10847)
    >>> imbalance_profile(4, 100, 10, kind="step")
    [100, 100, 10, 10]
    """
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    max_count = _validation.check_int("max_count", max_count, minimum=1)
    imbalance_factor = _validation.check_float("imbalance_factor", imbalance_factor, minimum=1.0)
    _validation.check_choice("kind", kind, {"exp", "step"})
    if kind == "exp":
        counts = [
            int(max_count * (1.0 / imbalance_factor) ** (i / (num_classes - 1.0)))
            for i in range(num_classes)
        ]
    else:
        head = num_classes // 2
        counts = [max_count] * head + [int(max_count / imbalance_factor)] * (num_classes - head)
    if min(counts) < 1:
        raise ValueError(
            "Expected every class to keep at least one example, but "
            f"max_count / imbalance_factor = {max_count / imbalance_factor:.3g} < 1. "
            f"Received: max_count={max_count}, imbalance_factor={imbalance_factor}"
        )
    return counts
