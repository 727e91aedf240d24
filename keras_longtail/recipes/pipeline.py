"""The training schedule and input pipeline of the CIFAR-style recipes (the LDAM-DRW CIFAR recipe)."""

from keras_longtail.recipes.defaults import WARMUP_FRACTION


def ldam_schedule(learning_rate, epochs, steps_per_epoch):
    """The LDAM-DRW CIFAR recipe scaled to `epochs`: linear warm-up over the first 2.5 % of
    the steps (5 of 200 epochs; at least one step, so it is never silently dropped), then
    x0.01 after 80 % of the steps (160 of 200 epochs) and x0.0001 after 90 %.

    Example:

    ```python
    import keras
    from keras_longtail import recipes

    optimizer = keras.optimizers.SGD(recipes.ldam_schedule(0.1, epochs=200, steps_per_epoch=97), momentum=0.9)
    ```
    """
    import keras

    from keras_longtail import optimizers as lt_optimizers

    total = epochs * steps_per_epoch
    warmup = max(1, int(round(WARMUP_FRACTION * total)))
    boundaries = [int(0.8 * total), int(0.9 * total)]
    decay = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [learning_rate, learning_rate * 0.01, learning_rate * 0.0001])
    return lt_optimizers.LinearWarmup(decay, warmup, learning_rate)


def training_pipeline(dataset, num_examples, batch_size, augment, seed):
    """The training input of every recipe: `dataset` shuffled over its `num_examples` (reshuffled each epoch),
    repeated, with `crop_and_flip` when `augment`, batched by `batch_size` and prefetched.

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from keras_longtail import recipes

    images = np.zeros((10, 32, 32, 3), "float32")
    data = tf.data.Dataset.from_tensor_slices((images, np.arange(10)))
    batches = recipes.training_pipeline(data, 10, batch_size=4, augment=True, seed=0)
    ```
    """
    import tensorflow as tf

    dataset = dataset.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True).repeat()
    if augment:
        dataset = dataset.map(crop_and_flip, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def crop_and_flip(image, label):
    """Random crop after 4-pixel zero padding, and random horizontal flip (the CIFAR recipe)."""
    import tensorflow as tf

    height, width = image.shape[0], image.shape[1]
    padded = tf.image.resize_with_crop_or_pad(image, height + 8, width + 8)
    image = tf.image.random_crop(padded, tf.shape(image))
    return tf.image.random_flip_left_right(image), label

