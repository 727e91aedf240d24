"""GBG's Group-Aware Completion (GAC) sampler on tf.data."""

import math

import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail._internal import elements as _elements
from keras_longtail._internal import per_class as _per_class


def group_aware_completion(dataset, grouping, class_counts, batch_size, *, min_fraction=0.1, beta=0.9999,
                           seed=None, shuffle_buffer=1024, augment=None, cache_classes=True):
    """Batches in which every class group is present (GBG's GAC sampler, paper appendix).

    `dataset` is shuffled, repeated and batched as usual; then, for every group
    V_i with no example in a batch, m = ceil(min_fraction * batch_size) examples of
    that group are appended (the paper: "so that the number of samples reaches 1/10
    of the batch size"). Inside group V_i, class j is drawn with the
    class-balanced probability (Cui et al. 2019) normalized over the group

        p_j = (1 - beta_i) / (1 - beta_i^{N_j}),   P_j = p_j / sum_{l in V_i} p_l,

    so the rare classes of a group are favoured. Batches keep `batch_size`
    examples when every group is present and grow by m per missing group
    otherwise, so the batch dimension is dynamic.

    The paper makes beta_i depend on the group's smallest class count N_min through
    two hyperparameters (rho = 0.9999 and a lambda); that formula is illegible in the
    paper's text and no public code implements the sampler, so `beta` is given
    directly: one value for all groups (Cui et al.'s 0.9999 by default) or one per
    group.

    The result is infinite: pass `steps_per_epoch` to `fit`. `dataset` is filtered
    once per class for the completion pools, so pass a cheap (cached, in-memory,
    un-augmented) dataset and the per-example augmentation as `augment`.
    TensorFlow-only (tf.data).

    Args:
        dataset: finite, unbatched `tf.data.Dataset` of `(features, label, ...)`
            tuples or dicts with a `"label"` key; scalar integer labels.
        grouping: a `keras_longtail.gbg.ClassGrouping` (or a list of group ids).
        class_counts: training examples per class N_j (length = number of classes).
        batch_size: examples per batch before completion, >= 1.
        min_fraction: fraction of `batch_size` added for a missing group, in (0, 1].
            Defaults to 0.1.
        beta: class-balanced beta in [0, 1), or one per group. Defaults to 0.9999.
        seed: seed of the shuffles and draws. Defaults to `None`.
        shuffle_buffer: shuffle buffer of the main stream and of each class pool.
            Defaults to 1024.
        augment: optional per-example function applied to the main stream and to the
            completion draws (e.g. random crop and flip). Defaults to `None`.
        cache_classes: keep each class's examples in memory after its first pass,
            so that its next passes do not filter all of `dataset` again (without
            it a rare class drawn often re-reads `dataset` every few batches).
            Costs one more copy of `dataset`'s elements in memory: for images too
            large for that, make the elements file paths and decode in `augment`,
            or pass False. Elements must not change from pass to pass (random
            augmentation belongs in `augment`). Defaults to `True`.

    Returns:
        An infinite `tf.data.Dataset` of batches with the structure of `dataset`.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> from keras_longtail.gbg import ClassGrouping
    >>> labels = [0] * 90 + [1] * 8 + [2] * 2
    >>> ds = tf.data.Dataset.from_tensor_slices((np.arange(100.0), labels))
    >>> batches = group_aware_completion(ds, ClassGrouping([0, 1, 1]), [90, 8, 2], 10, seed=0)
    >>> all(bool(np.isin(y.numpy(), [1, 2]).any()) for _, y in batches.take(20))
    True

    References:
        Li et al., "Long-Tailed Learning as Multi-Objective Optimization", AAAI 2024,
        https://arxiv.org/abs/2310.20490 (appendix, GAC sampler).
        Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
        CVPR 2019, https://arxiv.org/abs/1901.05555.
    """
    tf = _backend.import_tensorflow()
    _backend.require_tensorflow_backend("group_aware_completion")
    from keras_longtail.gbg.class_grouping import ClassGrouping

    if not isinstance(grouping, ClassGrouping):
        grouping = ClassGrouping(grouping)
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    min_fraction = _validation.check_float("min_fraction", min_fraction, minimum=0.0, maximum=1.0,
                                           min_inclusive=False)
    shuffle_buffer = _validation.check_int("shuffle_buffer", shuffle_buffer, minimum=1)
    cache_classes = _validation.check_bool("cache_classes", cache_classes)
    counts = _validation.check_class_counts("class_counts", class_counts, min_classes=1)
    if len(counts) != grouping.num_classes:
        raise ValueError(f"Expected `class_counts` to hold one count per class of `grouping` "
                         f"({grouping.num_classes}). Received {len(counts)}: class_counts={class_counts!r}")
    probabilities = completion_probabilities(grouping, counts, beta)
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"Expected `dataset` to be a tf.data.Dataset. Received: dataset={dataset!r}")
    _elements.check_element_spec(dataset.element_spec)
    fill = max(1, math.ceil(min_fraction * batch_size))
    table = tf.constant(grouping.groups, tf.int32)

    main = dataset.shuffle(shuffle_buffer, seed=seed).repeat()
    if augment is not None:
        main = main.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    main = main.batch(batch_size, drop_remainder=True)
    pools = _per_class.per_class_datasets(dataset, grouping.num_classes, seed=seed, shuffle_buffer=shuffle_buffer,
                                          cache=cache_classes)
    filled_groups, streams = [], []
    for g in range(grouping.num_groups):
        classes = [k for k in grouping.members(g) if counts[k] > 0]
        if not classes:
            continue  # a group without training examples cannot be completed
        stream = tf.data.Dataset.sample_from_datasets(
            [pools[k] for k in classes], weights=[float(probabilities[k]) for k in classes],
            seed=None if seed is None else seed + 7919 * (g + 1))
        if augment is not None:
            stream = stream.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        filled_groups.append(g)
        streams.append(stream.batch(fill))

    def complete(batch, *fills):
        labels = tf.cast(tf.reshape(_elements.label_of(batch), [-1]), tf.int32)
        present = tf.math.bincount(tf.gather(table, labels), minlength=grouping.num_groups,
                                   maxlength=grouping.num_groups) > 0
        parts = [batch]
        for g, extra in zip(filled_groups, fills):
            size = tf.where(present[g], 0, fill)
            parts.append(tf.nest.map_structure(lambda t, size=size: t[:size], extra))
        return tf.nest.map_structure(lambda *tensors: tf.concat(tensors, axis=0), *parts)

    return tf.data.Dataset.zip((main, *streams)).map(complete, num_parallel_calls=tf.data.AUTOTUNE)


def completion_probabilities(grouping, class_counts, beta=0.9999):
    """P_j: class-balanced probabilities (1 - b)/(1 - b^N_j) normalized within each group (NumPy).

    Classes without examples get 0.

    Example:

    >>> from keras_longtail.gbg import ClassGrouping
    >>> completion_probabilities(ClassGrouping([0, 1, 1]), [50, 10, 10]).tolist()
    [1.0, 0.5, 0.5]
    """
    counts = np.asarray(class_counts, np.float64)
    betas = np.asarray(beta, np.float64).reshape(-1)
    if betas.size == 1:
        betas = np.full(grouping.num_groups, betas[0])
    if betas.size != grouping.num_groups:
        raise ValueError(f"Expected `beta` to be one number or one per group ({grouping.num_groups}). "
                         f"Received: beta={beta!r}")
    for value in betas:
        _validation.check_float("beta", float(value), minimum=0.0, maximum=1.0, max_inclusive=False)
    groups = np.asarray(grouping.groups)
    b = betas[groups]
    weights = np.where(counts > 0, (1.0 - b) / np.where(counts > 0, 1.0 - b ** counts, 1.0), 0.0)
    totals = np.bincount(groups, weights=weights, minlength=grouping.num_groups)
    return np.divide(weights, totals[groups], out=np.zeros_like(weights), where=totals[groups] > 0)
