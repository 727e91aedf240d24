"""Progressively-balanced sampling on tf.data."""

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail._internal import per_class as _per_class


def progressive_class_probabilities(class_counts, epoch, epochs):
    """p_j(t) = (1 - t/T) * n_j / N + (t/T) / C, with t clipped to [0, T].

    Example:

    >>> progressive_class_probabilities([90, 10], epoch=5, epochs=10)
    [0.7, 0.3]
    """
    counts = _validation.check_class_counts("class_counts", class_counts, allow_zero=False)
    epochs = _validation.check_int("epochs", epochs, minimum=1)
    t = min(max(float(epoch), 0.0), float(epochs)) / epochs
    total, num_classes = float(sum(counts)), len(counts)
    return [round((1 - t) * n / total + t / num_classes, 12) for n in counts]


def progressively_balanced_sampler(dataset, class_counts, *, epochs, epoch_size=None, seed=None,
                                   shuffle_buffer=1024, cache_classes=False):
    """An infinite dataset moving from instance-balanced to class-balanced sampling.

    During epoch t (0-based, `epoch_size` draws each) class j is drawn with
    probability p_j(t) = (1 - t/T) * n_j / N + (t/T) / C (Kang et al. 2020), where
    n_j are the training counts, N their sum, C the number of classes and T =
    `epochs`; after T epochs sampling stays class-balanced. The schedule is a pure
    function of the draw index (no callback, no host state), so it is reproducible
    and resumes correctly.

    The result is infinite: batch it and pass `steps_per_epoch = epoch_size //
    batch_size` to `fit`. TensorFlow-only (tf.data).

    Args:
        dataset: finite `tf.data.Dataset` of `(features, label)` tuples or dicts
            with a `"label"` key.
        class_counts: training count of each class (all positive).
        epochs: T, the number of epochs over which sampling becomes balanced.
        epoch_size: draws per epoch. Defaults to `sum(class_counts)`.
        seed: seed for the class draws and per-class shuffles. Defaults to `None`.
        shuffle_buffer: per-class shuffle buffer; 0 keeps file order. Defaults to 1024.
        cache_classes: keep each class's examples in memory after its first pass,
            so that its next passes do not filter all of `dataset` again (without
            it a rare class drawn often re-reads `dataset` every few batches).
            Costs one more copy of `dataset`'s elements in memory; use False for a
            dataset too large for that, or one whose elements change from pass to
            pass (random augmentation inside it). Defaults to `False`.

    Returns:
        An infinite, unbatched `tf.data.Dataset` with the same element structure.

    Example:

    >>> import numpy as np, tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices((np.arange(110.0), [0] * 100 + [1] * 10))
    >>> sampled = progressively_balanced_sampler(ds, [100, 10], epochs=2, epoch_size=1000, seed=0)
    >>> labels = np.array([int(y) for _, y in sampled.take(3000)])
    >>> [round(float(labels[i:i + 1000].mean()), 1) for i in (0, 1000, 2000)]
    [0.1, 0.3, 0.5]
    """
    tf = _backend.import_tensorflow()
    counts = _validation.check_class_counts("class_counts", class_counts, allow_zero=False)
    epochs = _validation.check_int("epochs", epochs, minimum=1)
    epoch_size = _validation.check_int(
        "epoch_size", sum(counts) if epoch_size is None else epoch_size, minimum=1)
    shuffle_buffer = _validation.check_int("shuffle_buffer", shuffle_buffer, minimum=0)
    cache_classes = _validation.check_bool("cache_classes", cache_classes)
    num_classes = len(counts)
    datasets = _per_class.per_class_datasets(dataset, num_classes, seed=seed, shuffle_buffer=shuffle_buffer,
                                             cache=cache_classes)

    instance = tf.constant([n / sum(counts) for n in counts], tf.float32)
    balanced = tf.fill([num_classes], 1.0 / num_classes)

    def probabilities(index):
        t = tf.minimum(tf.cast(index // epoch_size, tf.float32), float(epochs)) / epochs
        return (1.0 - t) * instance + t * balanced

    weights = tf.data.Dataset.range(2**62).map(probabilities)
    return tf.data.Dataset.sample_from_datasets(datasets, weights=weights, seed=seed,
                                                stop_on_empty_dataset=False)
