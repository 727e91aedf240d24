"""The train-step contract (keras_longtail/_internal/train_step.py) on tiny models, against numpy and Keras' step."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail._internal.train_step import TrainStepMixin
from tests import helpers

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3)).astype(np.float32)
Y = RNG.normal(size=(12, 1)).astype(np.float32)
KERNEL = RNG.normal(size=(3, 1)).astype(np.float32)
BIAS = np.array([0.3], np.float32)
BATCH = 4  # 12 = 4 + 4 + 4; with `X[:10]` the last batch has 2 (one per replica)
LR = 0.05


class ContractStepMixin(TrainStepMixin):
    """A minimal method: the compiled loss times `strength`, written only with the contract's pieces."""

    method_config_keys = ("strength",)

    def __init__(self, *args, strength=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.strength = float(strength)

    def method_config(self):
        return {"strength": self.strength}

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.strength * self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                                     training=True)
            scaled = self.step_scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_weights)
        self.step_apply_gradients(gradients, self.trainable_weights)
        self.step_log_loss(loss, x)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


@keras.saving.register_keras_serializable(package="keras_longtail_tests")
class ContractModel(ContractStepMixin, keras.Model):
    """Functional-like constructor (`*args, **kwargs`): Keras' own get_config holds the graph."""


@keras.saving.register_keras_serializable(package="keras_longtail_tests")
class ExplicitContractModel(ContractStepMixin, keras.Model):
    """A functional model whose constructor names its arguments (as GradTailModel): the graph comes from a view."""

    def __init__(self, inputs, outputs, strength=1.0, name=None, **kwargs):
        super().__init__(inputs, outputs, strength=strength, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="keras_longtail_tests")
class SubclassedContractModel(ContractStepMixin, keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1, name="dense")

    def call(self, x):
        return self.dense(x)


def _graph():
    inputs = keras.Input((3,))
    return inputs, keras.layers.Dense(1, name="dense")(inputs)


def _compiled(cls, learning_rate=0.0, **kwargs):
    model = cls(*_graph(), **kwargs)
    model.set_weights([KERNEL, BIAS])
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return model


def _numpy_mse(kernel, bias, x, y):
    return float(np.mean((x.astype(np.float64) @ kernel + bias - y) ** 2))


# ---------------------------------------------------------------- (c) the logged loss
@pytest.mark.parametrize("strategy", ["one_device", "mirrored"])
@pytest.mark.parametrize("size", [12, 10])
def test_logged_loss_is_the_global_batch_loss(strategy, size):
    """With lr = 0, the epoch's `loss` is Σ_b B_b L_b / Σ_b B_b = the dataset's loss (numpy), on 1 or 2 replicas."""
    def run(_=None):
        model = _compiled(ContractModel, strength=2.0)
        return model.fit(X[:size], Y[:size], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)

    history = run() if strategy == "one_device" else helpers.run_mirrored(run)
    expected = 2.0 * _numpy_mse(KERNEL, BIAS, X[:size], Y[:size])
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_logged_loss_batch_by_batch_mirrored():
    """Each step's log under two replicas is the global batch loss (not a replica's share, not the sum)."""
    def run(_):
        model = _compiled(ContractModel)
        return [model.train_on_batch(X[i:i + BATCH], Y[i:i + BATCH], return_dict=True)["loss"]
                for i in (0, BATCH)]

    logged = helpers.run_mirrored(run)
    # train_on_batch resets the metrics between calls: each log is its batch's loss
    for value, i in zip(logged, (0, BATCH)):
        assert value == pytest.approx(_numpy_mse(KERNEL, BIAS, X[i:i + BATCH], Y[i:i + BATCH]), rel=1e-5)


def test_step_log_loss_needs_a_compiled_model():
    model = ContractModel(*_graph())
    with pytest.raises(ValueError, match="no 'loss' metric"):
        model.step_log_loss(tf.constant(1.0), X)


# ---------------------------------------------------------------- (a) and (b) the update
def _plain(learning_rate):
    model = keras.Model(*_graph())
    model.set_weights([KERNEL, BIAS])
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return model


@pytest.mark.parametrize("strategy", ["one_device", "mirrored"])
def test_update_equals_keras_builtin_step(strategy):
    """strength = 1: the contract's step is Keras' built-in step (weights and logs), on 1 or 2 replicas."""
    def run(_=None):
        ours, plain = _compiled(ContractModel, LR), _plain(LR)
        ours_history = ours.fit(X, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
        plain_history = plain.fit(X, Y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
        return ours.get_weights(), plain.get_weights(), ours_history.history, plain_history.history

    ours, plain, ours_logs, plain_logs = run() if strategy == "one_device" else helpers.run_mirrored(run)
    assert not np.allclose(ours[0], KERNEL)  # it trained
    for a, b in zip(ours, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours_logs["loss"], plain_logs["loss"], rtol=1e-5)


def test_mixed_float16_scales_the_loss_and_matches_keras():
    """mixed_float16: compile wraps a LossScaleOptimizer; with the scaled loss and `apply` the update is Keras'.

    Without `step_scale_loss` the gradients would be divided by the loss scale (2**15) and the update
    would vanish; without `apply`'s unscaling it would be 2**15 times too large.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        ours, plain = _compiled(ContractModel, LR), _plain(LR)
        assert isinstance(ours.optimizer, keras.optimizers.LossScaleOptimizer)
        ours.fit(X, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        plain.fit(X, Y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        scale = float(keras.ops.convert_to_numpy(ours.optimizer.dynamic_scale))
        assert scale > 1.0
        assert float(keras.ops.convert_to_numpy(ours.step_scale_loss(1.0))) == scale
    finally:
        keras.config.set_dtype_policy(previous)
    moved = np.abs(plain.get_weights()[0] - KERNEL).max()
    assert moved > 1e-2
    for a, b in zip(ours.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-3 * moved)


def test_step_scale_loss_without_optimizer_is_identity():
    assert float(ContractModel(*_graph()).step_scale_loss(2.5)) == 2.5


# ---------------------------------------------------------------- (d) serialization
@pytest.mark.parametrize("cls", [ContractModel, ExplicitContractModel])
def test_functional_config_round_trip_and_keras_file(cls, tmp_path):
    model = _compiled(cls, strength=3.0)
    config = model.get_config()
    json.dumps(config)
    assert config["strength"] == 3.0 and "layers" in config
    helpers.assert_config_round_trip(model)
    reloaded = helpers.assert_keras_save_load(model, X, tmp_path)
    assert type(reloaded) is cls and reloaded.strength == 3.0


def test_subclassed_config_round_trip_and_keras_file(tmp_path):
    model = SubclassedContractModel(strength=0.5)
    model(X[:1])
    model.compile(keras.optimizers.SGD(LR), "mse")
    config = model.get_config()
    assert config["strength"] == 0.5 and "layers" not in config
    revived = SubclassedContractModel.from_config(config)
    assert revived.strength == 0.5
    reloaded = helpers.assert_keras_save_load(model, X, tmp_path)
    assert reloaded.strength == 0.5


def test_method_config_keys_are_checked():
    class Undeclared(ContractModel):
        method_config_keys = ()

    with pytest.raises(ValueError, match="method_config_keys"):
        Undeclared(*_graph()).get_config()
