import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.gala import PredictionRebalancing
from tests import helpers

NUM_CLASSES = 5


def _reference(probabilities, tau, column_sums=None):
    sums = probabilities.sum(axis=0) if column_sums is None else column_sums
    return probabilities / sums[None, :] ** tau


def _probabilities(seed=0, n=40):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, NUM_CLASSES)) + np.linspace(2, -1, NUM_CLASSES)  # head-biased
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return logits.astype("float32"), probabilities.astype("float32")


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.7, 2.0])
def test_transductive_matches_numpy(tau):
    logits, probabilities = _probabilities()
    expected = _reference(probabilities.astype("float64"), tau)
    np.testing.assert_allclose(PredictionRebalancing(tau)(probabilities), expected, rtol=1e-5)
    np.testing.assert_allclose(PredictionRebalancing(tau, from_logits=True)(logits), expected, rtol=1e-5)


def test_tau_zero_is_identity():
    _, probabilities = _probabilities()
    layer = PredictionRebalancing(tau=0.0)
    np.testing.assert_array_equal(layer(probabilities), probabilities)
    layer.adapt(probabilities[:10])
    np.testing.assert_array_equal(layer(probabilities), probabilities)


@pytest.mark.parametrize("tau", [0.5, 1.0, 1.5])
def test_adapt_then_single_examples_equal_transductive(tau):
    _, probabilities = _probabilities(seed=1)
    transductive = PredictionRebalancing(tau)(probabilities)
    layer = PredictionRebalancing(tau)
    assert not layer.is_adapted
    layer.adapt(probabilities)
    assert layer.is_adapted
    singles = np.concatenate([layer(probabilities[i:i + 1]) for i in range(len(probabilities))])
    np.testing.assert_allclose(singles, transductive, rtol=1e-5)
    np.testing.assert_allclose(layer(probabilities[:3]), transductive[:3], rtol=1e-5)


def test_adapt_from_dataset_of_batches_and_tuples():
    logits, probabilities = _probabilities(seed=2)
    from_array = PredictionRebalancing(1.0, from_logits=True)
    from_array.adapt(logits)
    labels = np.zeros(len(logits), "int64")
    from_dataset = PredictionRebalancing(1.0, from_logits=True)
    from_dataset.adapt(tf.data.Dataset.from_tensor_slices((logits, labels)).batch(7))
    np.testing.assert_allclose(from_dataset.column_sums.numpy(), probabilities.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(from_dataset(logits[:2]), from_array(logits[:2]), rtol=1e-6)
    partial = PredictionRebalancing(1.0)
    partial.adapt(tf.data.Dataset.from_tensor_slices(probabilities).batch(10), steps=2)
    np.testing.assert_allclose(partial.column_sums.numpy(), probabilities[:20].sum(axis=0), rtol=1e-5)


def test_class_without_mass_gives_zero_not_nan():
    probabilities = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], "float32")
    result = PredictionRebalancing(1.0)(probabilities).numpy()
    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result, [[1 / 1.5, 0.0, 0.0], [0.5 / 1.5, 1.0, 0.0]], rtol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="tau"):
        PredictionRebalancing(tau=-0.5)
    with pytest.raises(TypeError, match="tau"):
        PredictionRebalancing(tau="1")
    with pytest.raises(TypeError, match="from_logits"):
        PredictionRebalancing(from_logits=1)
    layer = PredictionRebalancing(1.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="inputs"):
        layer(np.array([[0.5, 0.2], [0.1, 0.9]], "float32"))  # row 0 sums to 0.7
    with pytest.raises(tf.errors.InvalidArgumentError, match="inputs"):
        layer(np.array([[1.5, -0.5], [0.1, 0.9]], "float32"))  # negative
    with pytest.raises(ValueError, match="data"):
        layer.adapt(np.array([[2.0, 1.0], [0.1, 0.9]], "float32"))
    with pytest.raises(ValueError, match="data"):
        layer.adapt(np.zeros((0, 2), "float32"))
    with pytest.raises(ValueError, match="num_classes"):
        PredictionRebalancing(1.0)(np.ones((3, 1), "float32"))
    adapted = PredictionRebalancing(1.0)
    adapted.adapt(np.full((2, 3), 1 / 3, "float32"))
    with pytest.raises(ValueError, match="data"):
        adapted.adapt(np.full((2, 4), 1 / 4, "float32"))  # other number of classes


def test_serialization():
    revived = helpers.assert_config_round_trip(PredictionRebalancing(tau=1.4, from_logits=True, name="pn"))
    assert revived.tau == 1.4 and revived.from_logits and revived.name == "pn"


def _serving_model(adapt_on=None):
    weights = np.random.default_rng(3).normal(size=(4, NUM_CLASSES)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(NUM_CLASSES, name="classifier"),
                              PredictionRebalancing(tau=1.0, from_logits=True, name="rebalancing")])
    model.get_layer("classifier").set_weights([weights, np.zeros(NUM_CLASSES, "float32")])
    if adapt_on is not None:
        model.get_layer("rebalancing").adapt(model.get_layer("classifier")(adapt_on))
    return model


X = np.random.default_rng(4).normal(size=(32, 4)).astype("float32")


@pytest.mark.parametrize("adapted", [False, True])
def test_save_and_load(tmp_path, adapted):
    model = _serving_model(adapt_on=X if adapted else None)
    reloaded = helpers.assert_keras_save_load(model, X[:8], tmp_path)
    assert reloaded.get_layer("rebalancing").is_adapted == adapted


@functools.lru_cache(maxsize=None)
def _strategy():
    return helpers.mirrored_strategy()  # one per process: see tests/gala/test_gala_loss.py


@pytest.mark.slow
def test_fitted_mode_under_mirrored_strategy_and_jit_equals_eager():
    expected = _serving_model(adapt_on=X)(X, training=False).numpy()
    with _strategy().scope():
        mirrored = _serving_model(adapt_on=X)
        mirrored.compile()
    np.testing.assert_allclose(mirrored.predict(X, batch_size=8, verbose=0), expected, rtol=1e-5)
    jit = _serving_model(adapt_on=X)
    jit.compile(jit_compile=True)
    np.testing.assert_allclose(jit.predict(X, batch_size=8, verbose=0), expected, rtol=1e-5)


def test_float32_under_mixed_precision():
    probabilities = np.full((140_000, 2), 0.5, "float16")  # column sums 70,000 > float16 max
    result = PredictionRebalancing(1.0, dtype="mixed_float16")(probabilities).numpy()
    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result[:2], np.full((2, 2), 0.5 / 70_000), rtol=1e-6)


@pytest.mark.parametrize("adapted", [False, True])
def test_other_number_of_classes_than_built_raises_our_error(adapted):
    # Issue 21 item 12: a raw TensorFlow broadcasting error before.
    layer = PredictionRebalancing(1.0)
    if adapted:
        layer.adapt(np.full((2, 4), 1 / 4, "float32"))
    else:
        layer(np.full((2, 4), 1 / 4, "float32"))
    with pytest.raises(ValueError, match=r"Expected inputs of shape \(batch, 4\).*Received: inputs with shape \(2, 3\)"):
        layer(np.full((2, 3), 1 / 3, "float32"))
