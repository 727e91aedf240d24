"""The one code path every `load_*_lt` loader goes through."""

import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail.data.imbalance_profile import imbalance_profile
from keras_longtail.data.long_tailed import long_tailed
from keras_longtail.data.long_tailed_data import LongTailedData


def build_long_tailed(source, imbalance_factor, kind="exp", seed=None):
    """Subsamples a balanced `Source` with `long_tailed` and decodes the images."""
    tf = _backend.import_tensorflow()
    num_classes = len(source.class_names)
    available = np.bincount(source.train_y, minlength=num_classes)
    counts = imbalance_profile(num_classes, int(available.min()), imbalance_factor, kind=kind)

    train = tf.data.Dataset.from_tensor_slices((source.train_x, source.train_y.astype(np.int32)))
    train = long_tailed(train, counts, seed=seed)
    kept = np.fromiter(train.map(lambda x, y: y).as_numpy_iterator(), dtype=np.int64)
    kept_counts = np.bincount(kept, minlength=num_classes).tolist()
    if kept_counts != counts:
        raise ValueError(
            f"{source.name} at {source.where} has fewer training examples than the profile asks for: "
            f"wanted {counts}, found {kept_counts}"
        )
    # `long_tailed` filters, which hides the size from tf.data (and Keras then warns that the input "ran out of
    # data" in `predict`); the size is known and was just checked.
    train = train.apply(tf.data.experimental.assert_cardinality(sum(counts)))
    test = tf.data.Dataset.from_tensor_slices((source.test_x, source.test_y.astype(np.int32)))
    decode = _decoder(tf, source)
    train = train.map(decode, num_parallel_calls=tf.data.AUTOTUNE).cache()
    test = test.map(decode, num_parallel_calls=tf.data.AUTOTUNE).cache()
    return LongTailedData(train, test, counts, list(source.class_names))


def _decoder(tf, source):
    shape, scale = source.image_shape, 1.0 / source.max_value

    def decode(x, y):
        if source.from_files:
            x = tf.io.decode_image(tf.io.read_file(x), channels=shape[-1], expand_animations=False)
        x = tf.ensure_shape(tf.cast(x, tf.float32) * scale, shape)
        return x, y

    return decode
