import keras
import numpy as np
import pytest

from keras_longtail.gala import GALAAccumulator
from keras_longtail.gala import GALALoss

NUM_CLASSES = 4
X = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
Y = np.random.default_rng(1).choice(NUM_CLASSES, size=32, p=[0.6, 0.2, 0.15, 0.05])
X_VAL = np.random.default_rng(2).normal(size=(16, 3)).astype("float32")
Y_VAL = np.arange(16) % NUM_CLASSES
INITIAL = [np.random.default_rng(3).normal(size=(3, NUM_CLASSES)).astype("float32"),
           np.zeros(NUM_CLASSES, "float32")]


def _compiled(loss=None):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(NUM_CLASSES)])
    model.set_weights(INITIAL)
    model.compile(keras.optimizers.SGD(0.1), loss=loss or GALALoss(NUM_CLASSES))
    return model


def _fit(model, **kwargs):
    model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0, **kwargs)
    return model.loss.theta.numpy()


def test_validation_batches_do_not_accumulate():
    expected = _fit(_compiled())
    with_callback = _fit(_compiled(), validation_data=(X_VAL, Y_VAL), callbacks=[GALAAccumulator()])
    np.testing.assert_allclose(with_callback, expected, rtol=1e-6)
    without_callback = _fit(_compiled(), validation_data=(X_VAL, Y_VAL))
    assert np.all(without_callback > expected)  # what the callback prevents


def test_evaluate_and_flag_restored():
    model = _compiled()
    loss = model.loss
    before = loss.theta.numpy().copy()
    model.evaluate(X_VAL, Y_VAL, callbacks=[GALAAccumulator()], verbose=0)
    np.testing.assert_array_equal(loss.theta.numpy(), before)
    assert float(loss.accumulating.numpy()) == 1.0
    loss.accumulating.assign(0.0)
    _fit(model, callbacks=[GALAAccumulator()])
    assert loss.theta.numpy().sum() > 0  # accumulated during fit
    assert float(loss.accumulating.numpy()) == 0.0  # back to its value before fit


def test_finds_gala_losses_in_structures():
    inputs = keras.Input((3,))
    outputs = [keras.layers.Dense(NUM_CLASSES)(inputs), keras.layers.Dense(NUM_CLASSES)(inputs)]
    model = keras.Model(inputs, outputs)
    losses = [GALALoss(NUM_CLASSES), GALALoss(NUM_CLASSES)]
    model.compile("sgd", loss=losses)
    model.fit(X, [Y, Y], batch_size=8, verbose=0, validation_data=(X_VAL, [Y_VAL, Y_VAL]),
              callbacks=[GALAAccumulator()])
    assert all(loss.theta.numpy().sum() > 0 for loss in losses)


def test_requires_a_gala_loss():
    model = _compiled(keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="GALALoss"):
        model.fit(X, Y, verbose=0, callbacks=[GALAAccumulator()])
