import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.losses import MaskedL1
from tests import helpers


def _maps(seed=0, batch=4, shape=(6, 10), density=0.3):
    rng = np.random.default_rng(seed)
    y_true = rng.uniform(1.0, 80.0, size=(batch,) + shape).astype(np.float32)
    y_true[rng.uniform(size=y_true.shape) > density] = 0.0
    y_pred = rng.uniform(1.0, 80.0, size=y_true.shape).astype(np.float32)
    return y_true, y_pred


def _reference(y_true, y_pred):
    """numpy: per example, mean |pred - true| over the pixels with y_true > 0 (0 if none)."""
    out = []
    for t, p in zip(y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)):
        valid = t > 0
        out.append(np.abs(p[valid] - t[valid]).mean() if valid.any() else 0.0)
    return np.array(out)


def test_matches_numpy_per_example_and_reduced():
    y_true, y_pred = _maps()
    y_true[2] = 0.0  # an example without ground truth contributes 0
    np.testing.assert_allclose(MaskedL1(reduction=None)(y_true, y_pred), _reference(y_true, y_pred), rtol=1e-6)
    np.testing.assert_allclose(float(MaskedL1()(y_true, y_pred)), _reference(y_true, y_pred).mean(), rtol=1e-6)
    weights = np.array([1.0, 0.5, 2.0, 0.0], np.float32)
    np.testing.assert_allclose(float(MaskedL1()(y_true, y_pred, sample_weight=weights)),
                               (_reference(y_true, y_pred) * weights).mean(), rtol=1e-6)


def test_channel_axis_and_masked_pixels_never_count():
    y_true, y_pred = _maps(1)
    expected = _reference(y_true, y_pred)
    loss = MaskedL1(reduction=None)
    np.testing.assert_allclose(loss(y_true[..., None], y_pred[..., None]), expected, rtol=1e-6)
    np.testing.assert_allclose(loss(y_true, y_pred[..., None]), expected, rtol=1e-6)
    wild = y_pred.copy()
    wild[y_true == 0] = np.nan  # anything at pixels without ground truth: NaN, huge values
    np.testing.assert_allclose(loss(y_true, wild), expected, rtol=1e-6)
    nan_truth = y_true.copy()
    nan_truth[y_true == 0] = np.nan  # NaN or negative also mean "no ground truth"
    nan_truth[0, 0, 0] = -1.0 if y_true[0, 0, 0] == 0 else nan_truth[0, 0, 0]
    np.testing.assert_allclose(loss(nan_truth, y_pred), expected, rtol=1e-6)


def test_gradient_is_zero_at_masked_pixels():
    y_true, y_pred = _maps(2)
    prediction = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        value = MaskedL1()(y_true, prediction)
    gradient = tape.gradient(value, prediction).numpy()
    assert np.all(gradient[y_true == 0] == 0)
    counts = (y_true > 0).reshape(len(y_true), -1).sum(axis=1)
    expected = np.sign(y_pred - y_true) / counts[:, None, None] / len(y_true) * (y_true > 0)
    np.testing.assert_allclose(gradient, expected, rtol=1e-6)


def test_pixel_errors():
    y_true, y_pred = _maps(3)
    errors, mask = MaskedL1().pixel_errors(y_true, y_pred)
    np.testing.assert_array_equal(mask, (y_true > 0).astype(np.float32))
    np.testing.assert_allclose(errors, np.abs(y_pred - y_true) * (y_true > 0), rtol=1e-6)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="y_true"):
        MaskedL1()(np.ones((2, 4, 5)), np.ones((2, 4, 6)))
    with pytest.raises(ValueError, match="y_pred"):
        MaskedL1()(np.ones((2,)), np.ones((2,)))


def test_bad_reduction_is_rejected():
    with pytest.raises(ValueError, match="reduction"):
        MaskedL1(reduction="median")


def test_serialization_and_save_load(tmp_path):
    helpers.assert_config_round_trip(MaskedL1(reduction="sum", name="l1"))
    inputs = keras.Input((4, 5, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1)(inputs))
    model.compile("sgd", loss=MaskedL1())
    reloaded = helpers.assert_keras_save_load(model, np.ones((2, 4, 5, 1), np.float32), tmp_path)
    assert isinstance(reloaded.loss, MaskedL1)


def _fit(strategy=None, jit_compile=False):
    y_true, _ = _maps(4, batch=8, shape=(8, 8))
    x = np.random.default_rng(5).normal(size=(8, 8, 8, 2)).astype(np.float32)

    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 2))
        model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
        model.compile(keras.optimizers.SGD(0.01), loss=MaskedL1(), jit_compile=jit_compile)
        return model

    if strategy is None:
        model = build()
    else:
        with strategy.scope():
            model = build()
    data = tf.data.Dataset.from_tensor_slices((x, y_true[..., None])).batch(8)
    history = model.fit(data, epochs=3, verbose=0, shuffle=False)
    return [w.numpy() if hasattr(w, "numpy") else np.asarray(w) for w in model.get_weights()], history.history["loss"]


@pytest.mark.slow
def test_fit_under_mirrored_strategy_equals_one_device():
    weights, losses = _fit()
    mirrored_weights, mirrored_losses = _fit(helpers.mirrored_strategy())
    for a, b in zip(weights, mirrored_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses, mirrored_losses, rtol=1e-5)


def test_fit_with_jit_compile():
    weights, losses = _fit()
    jit_weights, jit_losses = _fit(jit_compile=True)
    for a, b in zip(weights, jit_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(jit_losses))
