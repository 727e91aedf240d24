"""Many / Medium / Few accuracy."""

import keras
import numpy as np
from keras import ops

from keras_longtail._internal import validation as _validation
from keras_longtail.data.shot_splits import shot_splits
from keras_longtail.metrics.per_class_accuracy import PerClassAccuracy


@keras.saving.register_keras_serializable(package="keras_longtail")
class ShotAccuracy(PerClassAccuracy):
    """Class-averaged accuracy overall and on the Many / Medium / Few-shot classes.

    With per-class accuracies acc_k (see `PerClassAccuracy`) and the set S_seen of
    classes that occurred in the data evaluated so far:

    overall = mean_{k in S_seen} acc_k
    many    = mean_{k in Many ∩ S_seen} acc_k   (likewise medium, few)

    Splits come from the training counts (`shot_splits`: Many > `many`, Medium
    in [`few`, `many`], Few < `few`). The result is a dict, which Keras flattens
    into the logs: `{name}_overall`, `{name}_many`, `{name}_medium`, `{name}_few`.
    A split with no classes (Fashion-MNIST-LT has no Few class) is left out of the
    dict rather than reported as 0; a class absent from the data evaluated so far
    is left out of the averages (a split none of whose classes was seen reads 0).
    Counts are sum-aggregated, so results under `tf.distribute` equal one device.

    Args:
        class_counts: training count of each class (sequence of non-negative ints).
        many: Many-shot threshold. Defaults to 100.
        few: Few-shot threshold. Defaults to 20.
        name: prefix of the reported keys. Defaults to `"acc"`.
        dtype: dtype of the counts. Defaults to `None` (float32).

    Returns:
        A dict of scalars.

    Example:

    ```python
    counts = [500, 200, 50, 10]
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=[ShotAccuracy(counts)])
    # logs: acc_overall, acc_many, acc_medium, acc_few
    ```

    >>> metric = ShotAccuracy([500, 200, 50, 10])
    >>> metric.update_state([0, 1, 2, 3], [[1., 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    >>> {k: round(float(v), 2) for k, v in metric.result().items()}
    {'acc_overall': 0.75, 'acc_many': 0.5, 'acc_medium': 1.0, 'acc_few': 1.0}
    """

    def __init__(self, class_counts, many=100, few=20, name="acc", dtype=None):
        counts = _validation.check_class_counts("class_counts", class_counts)
        super().__init__(num_classes=len(counts), name=name, dtype=dtype)
        self.class_counts = counts
        self.many = many
        self.few = few
        splits = shot_splits(counts, many=many, few=few)
        self._masks = {
            split: np.isin(np.arange(len(counts)), members).astype("float32")
            for split, members in splits._asdict().items()
            if members
        }

    def result(self):
        accuracy = self.per_class()
        seen = ops.cast(self.total > 0, accuracy.dtype)
        results = {f"{self.name}_overall": ops.divide_no_nan(ops.sum(accuracy * seen), ops.sum(seen))}
        for split, mask in self._masks.items():
            mask = ops.convert_to_tensor(mask, dtype=accuracy.dtype) * seen
            results[f"{self.name}_{split}"] = ops.divide_no_nan(ops.sum(accuracy * mask), ops.sum(mask))
        return results

    def get_config(self):
        return {
            "class_counts": list(self.class_counts),
            "many": self.many,
            "few": self.few,
            "name": self.name,
            "dtype": self.dtype,
        }
