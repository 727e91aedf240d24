import keras
import numpy as np
import pytest

from keras_longtail.layers import CosineClassifier
from tests import helpers

X = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
Y = np.random.default_rng(1).integers(0, 4, size=32)


def test_matches_numpy_and_bounds():
    layer = CosineClassifier(4, scale=12.0)
    logits = layer(X).numpy()
    kernel = layer.kernel.numpy()
    expected = 12.0 * (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (kernel / np.linalg.norm(kernel, axis=0))
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    assert np.abs(logits).max() <= 12.0 + 1e-4
    # Invariant to the scale of the features and of each class weight.
    layer.kernel.assign(kernel * np.array([1.0, 5.0, 0.2, 3.0], "float32"))
    np.testing.assert_allclose(layer(3.0 * X).numpy(), logits, rtol=1e-5, atol=1e-5)
    assert np.all(layer(np.zeros((2, 6), "float32")).numpy() == 0.0)  # zero features: finite, zero


def _model():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, name="features"),
                              CosineClassifier(4, scale=10.0, name="classifier")])
    model.set_weights([np.random.default_rng(2).normal(size=(6, 5)).astype("float32"), np.zeros(5, "float32"),
                       np.random.default_rng(3).normal(size=(5, 4)).astype("float32")])
    return model


def _fit(jit_compile=False):
    model = _model()
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.slow
def test_mirrored_strategy_and_jit_equal_one_device():
    expected = _fit()
    assert not np.allclose(expected[-1], _model().get_weights()[-1])
    for name, got in (("mirrored", helpers.run_mirrored(lambda strategy: _fit())), ("jit", _fit(jit_compile=True))):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_serialization_and_keras_save_load(tmp_path):
    revived = helpers.assert_config_round_trip(
        CosineClassifier(7, scale=20.0, kernel_initializer="he_normal", kernel_regularizer="l2", name="cos"))
    assert revived.units == 7 and revived.scale == 20.0 and revived.name == "cos"
    helpers.assert_keras_save_load(_model(), X, tmp_path)


def test_bad_input():
    with pytest.raises(ValueError, match="units"):
        CosineClassifier(0)
    with pytest.raises(ValueError, match="scale"):
        CosineClassifier(3, scale=0.0)
    with pytest.raises(TypeError, match="units"):
        CosineClassifier(2.5)


def test_wrong_feature_size_raises_our_error():
    # Issue 21 item 12: a raw TensorFlow matmul error before.
    layer = CosineClassifier(3)
    layer(np.ones((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"Expected features of size 5.*Received: inputs with shape \(2, 4\)"):
        layer(np.ones((2, 4), "float32"))
