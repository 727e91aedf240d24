import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.losses import MaskedL1
from keras_longtail.models import depth_unet
from tests import helpers

SMALL = dict(input_shape=(32, 64, 3), width_multiplier=0.25)


def _data(batch=4, shape=(32, 64), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(batch,) + shape + (3,)).astype(np.float32)
    y = rng.uniform(2.0, 80.0, size=(batch,) + shape + (1,)).astype(np.float32)
    y[rng.uniform(size=y.shape) > 0.2] = 0.0
    return x, y


def test_default_shape_names_and_range():
    model = depth_unet()
    assert model.input_shape == (None, 192, 480, 3)
    assert model.output_shape == (None, 192, 480, 1)
    names = [layer.name for layer in model.layers]
    for k in range(1, 6):
        assert f"encoder_block_{k}" + "_pw_relu" in names
        up = model.get_layer(f"decoder_up_{k}")
        assert isinstance(up, keras.layers.Conv2DTranspose) and up.bias is not None
    # Five stride-2 encoder blocks: the deepest feature map is 1/32 of the input.
    assert model.get_layer("encoder_block_5_pw_relu").output.shape[1:3] == (6, 15)
    assert model.get_layer("decoder_up_2").output.shape[1:3] == (24, 60)


def test_output_is_positive_and_below_max_depth():
    model = depth_unet(max_depth=50.0, **SMALL)
    x, _ = _data()
    y = keras.ops.convert_to_numpy(model(x * 100.0 - 50.0, training=False))  # extreme inputs
    assert y.shape == (4, 32, 64, 1)
    assert np.all(y >= 0.0) and np.all(y <= 50.0)


def test_decoder_up_biases_get_a_per_example_gradient():
    model = depth_unet(**SMALL)
    x, y = _data(batch=2)
    biases = [model.get_layer(f"decoder_up_{k}").bias for k in (1, 2)]
    gradients = []
    for i in range(2):
        with tf.GradientTape() as tape:
            loss = MaskedL1()(y[i:i + 1], model(x[i:i + 1], training=True))
        gradients.append(np.concatenate([g.numpy() for g in tape.gradient(loss, biases)]))
    assert all(np.linalg.norm(g) > 0 for g in gradients)
    assert not np.allclose(gradients[0], gradients[1])


def test_save_load(tmp_path):
    model = depth_unet(max_depth=80.0, **SMALL)
    model.compile("adam", loss=MaskedL1())
    model.optimizer.build(model.trainable_variables)
    x, _ = _data()
    reloaded = helpers.assert_keras_save_load(model, x, tmp_path, atol=1e-5)
    assert reloaded.get_layer("decoder_up_1").bias.shape == model.get_layer("decoder_up_1").bias.shape


@functools.lru_cache(maxsize=None)  # the one-device run is shared by two tests
def _fit(strategy=None, jit_compile=False):
    x, y = _data(batch=4, shape=(32, 32))

    def build():
        keras.utils.set_random_seed(0)
        model = depth_unet(input_shape=(32, 32, 3), width_multiplier=0.25)
        model.compile(keras.optimizers.SGD(0.05), loss=MaskedL1(), jit_compile=jit_compile)
        return model

    if strategy is None:
        model = build()
    else:
        with strategy.scope():
            model = build()
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), epochs=1, verbose=0, shuffle=False)
    return [np.asarray(w) for w in model.get_weights()]


@pytest.mark.slow
def test_training_under_mirrored_strategy_equals_one_device():
    single = _fit()
    mirrored = _fit(helpers.mirrored_strategy())
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_training_with_jit_compile():
    single = _fit()
    jit = _fit(jit_compile=True)
    for a, b in zip(single, jit):  # XLA's convolutions round differently
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kwargs, argument", [
    ({"input_shape": (190, 480, 3)}, "input_shape"),
    ({"input_shape": (192, 480)}, "input_shape"),
    ({"input_shape": (16, 480, 3)}, "input_shape"),
    ({"width_multiplier": 0}, "width_multiplier"),
    ({"max_depth": -1.0}, "max_depth"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        depth_unet(**kwargs)
