"""Per-class views of a labelled dataset, shared by the samplers."""

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import elements as _elements


def per_class_datasets(dataset, num_classes, seed=None, shuffle_buffer=None, cache=False):
    """One infinite (repeated, optionally shuffled) dataset per class.

    A class's dataset filters all of `dataset` on each pass; with `cache`, only its first pass does and later
    passes read the class's examples from memory (the same elements in the same order, reshuffled the same way).
    """
    tf = _backend.import_tensorflow()
    _backend.require_tensorflow_backend("the long-tailed samplers")
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"Expected `dataset` to be a tf.data.Dataset. Received: dataset={dataset!r}")
    _elements.check_element_spec(dataset.element_spec)
    datasets = []
    for k in range(num_classes):
        def is_class(*element, k=k):
            element = element[0] if len(element) == 1 else element
            return tf.equal(tf.cast(_elements.label_of(element), tf.int64), k)

        class_ds = dataset.filter(is_class)
        if cache:
            class_ds = class_ds.cache()
        if shuffle_buffer:
            class_ds = class_ds.shuffle(shuffle_buffer, seed=None if seed is None else seed + k)
        datasets.append(class_ds.repeat())
    return datasets
