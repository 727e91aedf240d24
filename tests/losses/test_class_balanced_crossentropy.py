import keras
import numpy as np
import pytest

from keras_longtail.losses import ClassBalancedCrossentropy
from keras_longtail.losses import class_balanced_weights
from tests import helpers

COUNTS = [500, 100, 20, 4]


def test_weights_limits_and_numpy_reference():
    np.testing.assert_allclose(class_balanced_weights(COUNTS, 0.0), np.ones(4))
    inverse = 1.0 / np.array(COUNTS, float)
    np.testing.assert_allclose(class_balanced_weights(COUNTS, 1 - 1e-9), inverse / inverse.sum() * 4, rtol=1e-5)
    beta = 0.99
    effective = (1 - beta ** np.array(COUNTS, float)) / (1 - beta)
    np.testing.assert_allclose(class_balanced_weights(COUNTS, beta), (1 / effective) / (1 / effective).sum() * 4)


def test_loss_matches_numpy_and_beta_zero_is_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 4)).astype("float32")
    labels = np.array([0, 1, 2, 3, 0, 0, 3, 2])
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    weights = class_balanced_weights(COUNTS, 0.999)
    expected = np.mean(-weights[labels] * log_p[np.arange(8), labels])
    got = float(ClassBalancedCrossentropy(COUNTS, beta=0.999)(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    ce = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits))
    assert float(ClassBalancedCrossentropy(COUNTS, beta=0.0)(labels, logits)) == pytest.approx(ce, rel=1e-6)


def test_serialization_and_save_load(tmp_path):
    loss = ClassBalancedCrossentropy(COUNTS, beta=0.99)
    helpers.assert_config_round_trip(loss)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.compile("sgd", loss=loss)
    model.fit(np.ones((8, 3)), np.arange(8) % 4, verbose=0)
    reloaded = helpers.assert_keras_save_load(model, np.ones((2, 3), "float32"), tmp_path)
    assert isinstance(reloaded.loss, ClassBalancedCrossentropy) and reloaded.loss.beta == 0.99


def test_bad_input():
    with pytest.raises(ValueError, match="beta"):
        class_balanced_weights(COUNTS, 1.0)
    with pytest.raises(ValueError, match="beta"):
        ClassBalancedCrossentropy(COUNTS, beta=-0.1)
    for counts in ([5, 0, 3], [5, -1, 3]):
        with pytest.raises(ValueError, match="class_counts"):
            class_balanced_weights(counts)
    with pytest.raises(ValueError, match="y_pred"):
        ClassBalancedCrossentropy(COUNTS)([0], [[0.0, 1.0]])
