"""What the `load_*_lt` loaders return."""

import typing


class LongTailedData(typing.NamedTuple):
    """A long-tailed training split, a balanced test split and their metadata.

    Unpacks like a tuple: `train, test, class_counts, class_names = load_digits_lt()`.

    Attributes:
        train: `tf.data.Dataset` of `(image, label)`, float32 images in [0, 1], int32
            labels, unbatched, in a fixed order (shuffle it yourself).
        test: the balanced test split, same element structure.
        class_counts: list of per-class training counts actually kept.
        class_names: list of class names (index = label).

    Example:

    >>> from keras_longtail.data import load_digits_lt
    >>> data = load_digits_lt(imbalance_factor=10)
    >>> data.num_classes, data.class_counts[0], sum(data.class_counts) == data.num_train
    (10, 144, True)
    """

    train: typing.Any
    test: typing.Any
    class_counts: list
    class_names: list

    @property
    def num_classes(self):
        """Number of classes."""
        return len(self.class_counts)

    @property
    def num_train(self):
        """Number of training examples."""
        return int(sum(self.class_counts))
