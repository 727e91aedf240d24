import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.callbacks import BackupAndRestore
from keras_longtail.gala import GALAAccumulator
from keras_longtail.gala import GALAStatistics
from keras_longtail.gala import GALALoss
from tests import helpers

NUM_CLASSES = 5
X = np.random.default_rng(0).normal(size=(48, 6)).astype("float32")
Y = np.random.default_rng(1).choice(NUM_CLASSES, size=48, p=[0.45, 0.25, 0.15, 0.1, 0.05])
X_VAL = np.random.default_rng(2).normal(size=(16, 6)).astype("float32")
Y_VAL = np.arange(16) % NUM_CLASSES
EPOCHS = 3


def _network():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    return inputs, keras.layers.Dense(NUM_CLASSES, name="classifier")(hidden)


def _run(with_layer, accumulation="paper", callbacks=(), epochs=EPOCHS, jit_compile=False, validation=False):
    """One training run from seeded weights; returns (model, loss, history, statistics variables)."""
    inputs, logits = _network()
    if with_layer:
        statistics = GALAStatistics(name="gala_statistics")
        model = keras.Model(inputs, statistics(logits))
        loss = GALALoss(NUM_CLASSES, accumulation=accumulation, statistics=statistics)
    else:
        model, loss = keras.Model(inputs, logits), GALALoss(NUM_CLASSES, accumulation=accumulation)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss=loss, jit_compile=jit_compile)
    history = model.fit(X, Y, batch_size=8, epochs=epochs, shuffle=False, verbose=0,
                        validation_data=(X_VAL, Y_VAL) if validation else None,
                        callbacks=[GALAAccumulator(), *callbacks])
    return model, loss, history.history


def _state(model, loss):
    return [loss.theta.numpy(), loss.phi.numpy()] + [np.asarray(w) for w in model.trainable_weights]


@pytest.mark.parametrize("accumulation", ["paper", "official"])
@pytest.mark.slow
def test_same_losses_and_statistics_as_the_loss_only_path(accumulation):
    model, loss, history = _run(False, accumulation, validation=True)
    layer_model, layer_loss, layer_history = _run(True, accumulation, validation=True)
    assert loss.theta.numpy().sum() > 0
    statistics = layer_model.get_layer("gala_statistics")
    assert layer_loss.theta is statistics.theta and layer_loss.phi is statistics.phi
    for want, have in zip(_state(model, loss), _state(layer_model, layer_loss)):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-7)
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(layer_history[key], history[key], rtol=1e-5)
    if accumulation == "official":
        np.testing.assert_allclose(statistics.running.numpy(), loss._running.numpy(), rtol=1e-5)
    # The statistics are weights of the model, not of the loss.
    assert [w.name for w in layer_model.non_trainable_weights] == ["theta", "phi", "running"]
    assert layer_loss.variables == [layer_loss.accumulating]


@pytest.mark.parametrize("accumulation", ["paper", "official"])
@pytest.mark.slow
def test_mirrored_strategy_and_jit_equal_the_loss_only_path(accumulation):
    model, loss, _ = _run(False, accumulation, epochs=1)
    expected = _state(model, loss)

    def mirrored(strategy):
        model, loss, _ = _run(True, accumulation, epochs=1, validation=True)
        assert isinstance(loss.theta.value, tf.distribute.DistributedValues)
        return _state(model, loss)

    jit_model, jit_loss, _ = _run(True, accumulation, epochs=1, jit_compile=True)
    for name, got in (("mirrored", helpers.run_mirrored(mirrored)), ("jit", _state(jit_model, jit_loss))):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_passes_the_logits_through_unchanged():
    model, _, _ = _run(True, epochs=1)
    logits_model = keras.Model(model.inputs, model.get_layer("classifier").output)
    np.testing.assert_array_equal(model.predict(X, verbose=0), logits_model.predict(X, verbose=0))
    half = np.array([[1.0009765625, -3.5, 65504.0]], "float16")
    out = GALAStatistics()(half)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"  # exact upcast
    np.testing.assert_array_equal(np.asarray(out), half.astype("float32"))


def test_serialization():
    revived = helpers.assert_config_round_trip(GALAStatistics(name="stats"))
    assert revived.name == "stats"
    statistics = GALAStatistics(name="stats")
    statistics.build((None, 3))
    loss = helpers.assert_config_round_trip(GALALoss(3, accumulation="official", statistics=statistics))
    assert loss.get_config()["statistics"] == "stats" and loss.statistics == "stats"  # binds on its first call


@pytest.mark.parametrize("accumulation", ["paper", "official"])
def test_keras_save_load_keeps_the_statistics_and_training_continues(tmp_path, accumulation):
    model, loss, _ = _run(True, accumulation, epochs=1)
    reloaded = helpers.assert_keras_save_load(model, X[:5], tmp_path)
    statistics = reloaded.get_layer("gala_statistics")
    for name in ("theta", "phi", "running"):
        np.testing.assert_array_equal(getattr(statistics, name).numpy(),
                                      getattr(model.get_layer("gala_statistics"), name).numpy())
    assert statistics.theta.numpy().sum() > 0
    assert isinstance(reloaded.loss, GALALoss) and reloaded.loss.statistics == "gala_statistics"
    # Both continue one more epoch: the reloaded loss binds to the reloaded layer, and the runs stay equal.
    for m in (model, reloaded):
        m.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert reloaded.loss.theta is statistics.theta and reloaded.loss.phi is statistics.phi
    for want, have in zip(_state(model, loss), _state(reloaded, reloaded.loss)):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backup_class", [keras.callbacks.BackupAndRestore, BackupAndRestore])
@pytest.mark.parametrize("accumulation", ["paper", "official"])
@pytest.mark.slow
def test_backup_and_restore_resumes_to_the_uninterrupted_state(tmp_path, backup_class, accumulation):
    # Killed mid-epoch, then resumed in fresh objects (a restarted process): Keras' own callback restores the
    # layer's statistics with the weights.
    model, loss, _ = _run(True, accumulation)
    resumed_model, resumed_loss, _ = helpers.kill_and_resume(
        lambda callbacks: _run(True, accumulation, callbacks=callbacks),
        lambda: backup_class(str(tmp_path / "backup")))
    for want, have in zip(_state(model, loss) + [model.get_layer("gala_statistics").running.numpy()],
                          _state(resumed_model, resumed_loss)
                          + [resumed_model.get_layer("gala_statistics").running.numpy()]):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


def test_losing_the_statistics_is_detected():
    # Why the resume test can fail: a run whose statistics restart at zero mid-way ends elsewhere.
    model, loss, _ = _run(True)

    class Forget(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.get_layer("gala_statistics").reset_state()

    other_model, other_loss, _ = _run(True, callbacks=[Forget()])
    assert not np.allclose(other_loss.theta.numpy(), loss.theta.numpy(), rtol=1e-3)


def test_bad_input():
    statistics = GALAStatistics()
    statistics.build((None, 3))
    with pytest.raises(ValueError, match=r"Expected a GALAStatistics layer on 4 classes.*Received"):
        GALALoss(4, statistics=statistics)
    with pytest.raises(TypeError, match="statistics"):
        GALALoss(3, statistics=keras.layers.Dense(3))
    with pytest.raises(ValueError, match="num_classes >= 2"):
        GALAStatistics()(np.zeros((2, 1), "float32"))
    with pytest.raises(ValueError, match=r"Expected logits of shape \(batch, 3\).*Received"):
        statistics(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="named 'nowhere'"):
        GALALoss(3, statistics="nowhere")([0], [[1.0, 0.0, 0.0]])
    unbuilt = GALALoss(3, statistics=GALAStatistics(name="unbuilt"))
    with pytest.raises(ValueError, match="to be built"):
        unbuilt([0], [[1.0, 0.0, 0.0]])


def test_mixed_precision_equals_the_loss_only_path():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, loss, history = _run(False, epochs=1)
        layer_model, layer_loss, layer_history = _run(True, epochs=1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert layer_model.get_layer("classifier").compute_dtype == "float16"
    assert layer_model.get_layer("gala_statistics").theta.dtype == "float32"
    assert np.isfinite(layer_history["loss"]).all() and layer_loss.theta.numpy().sum() > 0
    for want, have in zip(_state(model, loss), _state(layer_model, layer_loss)):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_reloaded_model_continues_under_mirrored_strategy(tmp_path):
    # The loss rebuilt from the `.keras` config binds to the reloaded layer inside the replicas' step.
    model, loss, _ = _run(True, "official", epochs=1)
    path = str(tmp_path / "model.keras")
    model.save(path)
    model.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    def resume(strategy):
        reloaded = keras.saving.load_model(path)
        reloaded.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        statistics = reloaded.get_layer("gala_statistics")
        assert reloaded.loss.theta is statistics.theta
        return [statistics.theta.numpy(), statistics.phi.numpy(), statistics.running.numpy()] + [
            np.asarray(w) for w in reloaded.trainable_weights]

    got = helpers.run_mirrored(resume)
    statistics = model.get_layer("gala_statistics")
    want = [statistics.theta.numpy(), statistics.phi.numpy(), statistics.running.numpy()] + [
        np.asarray(w) for w in model.trainable_weights]
    for expected, have in zip(want, got):
        np.testing.assert_allclose(have, expected, rtol=1e-5, atol=1e-6)
