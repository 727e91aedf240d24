"""Class-balanced sampling on tf.data."""

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail._internal import per_class as _per_class


def class_balanced_sampler(dataset, num_classes, *, seed=None, shuffle_buffer=1024, cache_classes=False):
    """An infinite dataset drawing every class with probability 1/C.

    Each draw picks a class uniformly, then the next example of that class (each
    class cycles through its own examples, reshuffled each pass). Rare classes are
    therefore repeated and head classes under-sampled: the sampler of Kang et al.
    (2020) "class-balanced sampling" (p_j = 1/C).

    The result is infinite: batch it and pass `steps_per_epoch` to `fit`. Cache
    `dataset` first if it is expensive (it is filtered once per class).
    TensorFlow-only (tf.data).

    Args:
        dataset: finite `tf.data.Dataset` of `(features, label)` tuples or dicts
            with a `"label"` key; scalar integer labels in `[0, num_classes)`.
        num_classes: number of classes, >= 2. Every class must occur in `dataset`.
        seed: seed for the class draws and the per-class shuffles. Defaults to `None`.
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
    >>> labels = [int(y) for _, y in class_balanced_sampler(ds, 2, seed=0).take(2000)]
    >>> bool(0.45 < np.mean(labels) < 0.55)
    True
    """
    tf = _backend.import_tensorflow()
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    shuffle_buffer = _validation.check_int("shuffle_buffer", shuffle_buffer, minimum=0)
    cache_classes = _validation.check_bool("cache_classes", cache_classes)
    datasets = _per_class.per_class_datasets(dataset, num_classes, seed=seed, shuffle_buffer=shuffle_buffer,
                                             cache=cache_classes)
    return tf.data.Dataset.sample_from_datasets(
        datasets, weights=[1.0 / num_classes] * num_classes, seed=seed, stop_on_empty_dataset=False
    )
