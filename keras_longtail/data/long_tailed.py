"""Subsample a labelled `tf.data.Dataset` to given per-class counts."""

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail._internal import elements as _elements


def long_tailed(dataset, class_counts, seed=None):
    """Keeps the first `class_counts[k]` examples of each class `k`.

    Without a seed the subset is deterministic: the first n_k examples of class k
    in dataset order, as the reference CIFAR-LT code of weight balancing does.
    With a seed the dataset is first shuffled once (`reshuffle_each_iteration=False`)
    with that seed, as LDAM-DRW does with seed 0, so the subset is a seeded random
    one, kept in that shuffled order; without a seed the kept examples stay in
    dataset order.

    Labels must lie in `[0, len(class_counts))`; an out-of-range label raises
    `tf.errors.InvalidArgumentError` when the dataset is iterated. A class that has
    fewer examples than requested keeps all of them: compare the counts you get
    (the `load_*_lt` loaders do and raise).

    TensorFlow-only: this transforms a `tf.data.Dataset`.

    Args:
        dataset: a finite `tf.data.Dataset` of `(features, label, ...)` tuples or dicts
            with a `"label"` key; scalar integer labels.
        class_counts: sequence of non-negative ints, one per class, e.g. from
            `imbalance_profile`.
        seed: `None` for the deterministic first-n_k rule, or an int to shuffle first.
            Defaults to `None`.

    Returns:
        A `tf.data.Dataset` with the same element structure.

    Example:

    >>> import tensorflow as tf
    >>> labels = [0, 1, 0, 1, 0, 1, 2, 2, 2]
    >>> ds = tf.data.Dataset.from_tensor_slices((tf.range(9), labels))
    >>> lt = long_tailed(ds, [3, 1, 2])
    >>> [int(x) for x, _ in lt]
    [0, 1, 2, 4, 6, 7]
    """
    tf = _backend.import_tensorflow()
    _backend.require_tensorflow_backend("long_tailed")
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"Expected `dataset` to be a tf.data.Dataset. Received: dataset={dataset!r}")
    counts = _validation.check_class_counts("class_counts", class_counts)
    if seed is not None:
        seed = _validation.check_int("seed", seed)
    _elements.check_element_spec(dataset.element_spec)
    num_classes = len(counts)

    if seed is not None:
        cardinality = int(dataset.cardinality())
        if cardinality < 0:
            raise ValueError(
                "A seeded `long_tailed` shuffles the whole dataset, so it needs a dataset of known "
                f"finite size. Received cardinality {cardinality}; apply "
                "`tf.data.experimental.assert_cardinality(n)` first, or use seed=None."
            )
        dataset = dataset.shuffle(cardinality, seed=seed, reshuffle_each_iteration=False)

    quota = tf.constant(counts, dtype=tf.int64)

    def keep(seen, element):
        label = tf.cast(_elements.label_of(element), tf.int64)
        checks = [
            tf.debugging.assert_greater_equal(
                label, tf.constant(0, tf.int64),
                message=f"long_tailed: labels must lie in [0, {num_classes}) (len(class_counts))"),
            tf.debugging.assert_less(
                label, tf.constant(num_classes, tf.int64),
                message=f"long_tailed: labels must lie in [0, {num_classes}) (len(class_counts))"),
        ]
        with tf.control_dependencies(checks):
            one_hot = tf.one_hot(label, num_classes, dtype=tf.int64)
        kept = tf.reduce_sum(one_hot * seen) < tf.reduce_sum(one_hot * quota)
        return seen + one_hot, (kept, element)

    initial = tf.zeros([num_classes], dtype=tf.int64)
    return (
        dataset.scan(initial, keep)
        .filter(lambda kept, element: kept)
        .map(lambda kept, element: element)
    )
