import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.layers import PaddedRandomCrop
from tests import helpers

IMAGES = np.random.default_rng(0).uniform(0.1, 1.0, size=(64, 6, 5, 2)).astype("float32")


def _offsets(images, cropped, padding):
    """Each image's (dy, dx): the one window of its zero-padded copy that equals its crop (a numpy reference)."""
    padded = np.pad(images, [(0, 0), (padding, padding), (padding, padding), (0, 0)])
    height, width = images.shape[1:3]
    found = []
    for b in range(len(images)):
        windows = [(dy, dx) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)
                   if np.array_equal(cropped[b], padded[b, dy:dy + height, dx:dx + width])]
        assert len(windows) == 1, (b, windows)  # positive pixels: no two windows are equal
        found.append(windows[0])
    return found


def test_each_image_is_a_window_of_its_zero_padded_copy_at_its_own_offset():
    cropped = PaddedRandomCrop(2, seed=3)(IMAGES, training=True).numpy()
    offsets = _offsets(IMAGES, cropped, 2)
    assert len(set(offsets)) > 10  # per image, not one offset for the batch (keras.layers.RandomCrop)
    assert {dy for dy, _ in offsets} == set(range(5)) and {dx for _, dx in offsets} == set(range(5))


def test_offsets_are_uniform_over_the_window():
    layer = PaddedRandomCrop(1, seed=0)
    images = np.ones((1, 1, 1, 1), "float32")
    counts = np.zeros((3, 3))
    for _ in range(900):  # a 1x1 image in a 3x3 padded one: the crop is 1 only at offset (1, 1)
        counts[1, 1] += layer(images, training=True).numpy().item()
    assert 100 - 35 < counts[1, 1] < 100 + 35  # Binomial(900, 1/9): mean 100, std 9.4
    offsets = _offsets(np.tile(IMAGES[:1], (900, 1, 1, 1)),
                       layer(np.tile(IMAGES[:1], (900, 1, 1, 1)), training=True).numpy(), 1)
    histogram = np.zeros((3, 3))
    for dy, dx in offsets:
        histogram[dy, dx] += 1
    assert histogram.min() > 100 - 35 and histogram.max() < 100 + 35


def test_identity_outside_training_and_with_zero_padding():
    np.testing.assert_array_equal(PaddedRandomCrop(4)(IMAGES, training=False).numpy(), IMAGES)
    np.testing.assert_array_equal(PaddedRandomCrop(0)(IMAGES, training=True).numpy(), IMAGES)
    model = keras.Sequential([keras.Input((6, 5, 2)), PaddedRandomCrop(2)])
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0), IMAGES)


def test_seeded_layers_repeat_and_draws_differ_between_calls():
    first, second = PaddedRandomCrop(2, seed=7), PaddedRandomCrop(2, seed=7)
    a = first(IMAGES, training=True).numpy()
    np.testing.assert_array_equal(second(IMAGES, training=True).numpy(), a)
    assert not np.array_equal(first(IMAGES, training=True).numpy(), a)


def test_inside_an_xla_compiled_function_and_in_bfloat16():
    layer = PaddedRandomCrop(2, seed=1)
    crop = tf.function(lambda images: layer(images, training=True), jit_compile=True)
    cropped = crop(tf.constant(IMAGES)).numpy()
    _offsets(IMAGES, cropped, 2)
    half = PaddedRandomCrop(2, seed=1, dtype="mixed_bfloat16")(IMAGES, training=True)
    assert half.dtype == tf.bfloat16
    rounded = tf.cast(tf.cast(IMAGES, tf.bfloat16), tf.float32).numpy()
    _offsets(rounded, tf.cast(half, tf.float32).numpy(), 2)  # exact: each value is one (rounded) input value


def _model():
    inputs = keras.Input((6, 5, 2))
    x = PaddedRandomCrop(1, seed=0, name="crop")(inputs)
    x = keras.layers.Conv2D(3, 3, name="conv")(x)
    outputs = keras.layers.Dense(4, name="classifier")(keras.layers.GlobalAveragePooling2D(name="features")(x))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("distributed", [False, True], ids=["one_device", "mirrored"])
def test_fit_trains_on_cropped_images(distributed):
    labels = np.arange(64) % 4

    def fit(strategy=None):
        keras.utils.set_random_seed(0)
        model = _model()
        model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=not distributed)
        history = model.fit(IMAGES, labels, batch_size=16, epochs=2, verbose=0)
        return history.history["loss"], model.get_layer("conv").get_weights()[0]

    losses, kernel = helpers.run_mirrored(lambda strategy: fit(strategy)) if distributed else fit()
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(kernel))


def test_serialization_and_keras_save_load(tmp_path):
    revived = helpers.assert_config_round_trip(PaddedRandomCrop(3, seed=5, name="pad_crop"))
    assert revived.padding == 3 and revived.seed == 5 and revived.name == "pad_crop"
    helpers.assert_keras_save_load(_model(), IMAGES, tmp_path)


def test_bad_input():
    with pytest.raises(ValueError, match="Expected `padding` >= 0. Received: padding=-1"):
        PaddedRandomCrop(-1)
    with pytest.raises(TypeError, match="padding"):
        PaddedRandomCrop(1.5)
    with pytest.raises(ValueError, match="static height and width"):
        PaddedRandomCrop(1)(keras.Input((None, 5, 2)))
    with pytest.raises(ValueError):
        PaddedRandomCrop(1)(np.zeros((2, 5, 2), "float32"))  # not a batch of images
