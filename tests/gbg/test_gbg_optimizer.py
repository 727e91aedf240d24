import json

import keras
import numpy as np
import pytest

from keras_longtail import models
from keras_longtail.gbg import ClassGrouping
from keras_longtail.ops import min_norm_weights
from keras_longtail.optimizers import GBGOptimizer
from keras_longtail.training import GBGModel
from tests import helpers

NUM_CLASSES = 6
GROUPING = ClassGrouping([0, 0, 1, 1, 2, 2])
X = np.random.default_rng(0).normal(size=(48, 5)).astype(np.float32)
Y = np.random.default_rng(1).choice(NUM_CLASSES, size=48, p=[0.4, 0.2, 0.15, 0.15, 0.1, 0.0])


def _network():
    keras.utils.set_random_seed(3)
    return models.mlp(NUM_CLASSES, (5,), hidden_units=(8,))


def _sgd():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.2, decay_steps=1, decay_rate=0.7)
    return keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=0.01)


def _fit(model, optimizer, epochs=2, jit_compile=False):
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile)
    history = model.fit(X, Y, batch_size=16, epochs=epochs, shuffle=False, verbose=0)
    return model, history.history


def test_a_single_gradient_list_equals_the_inner_optimizer():
    plain, plain_history = _fit(_network(), _sgd())
    wrapped, history = _fit(_network(), GBGOptimizer(_sgd(), GROUPING))  # built-in step: one list
    for want, have in zip(plain.get_weights(), wrapped.get_weights()):
        np.testing.assert_array_equal(have, want)
    assert history["loss"] == plain_history["loss"]
    assert int(wrapped.optimizer.iterations) == int(plain.optimizer.iterations) == 6
    assert float(wrapped.optimizer.learning_rate) == pytest.approx(0.2 * 0.7 ** 6)


@pytest.mark.parametrize("mode", ["exact", "representation"])
def test_one_group_in_the_gbg_step_equals_the_inner_optimizer(mode):
    plain, _ = _fit(_network(), _sgd())
    one_group = GBGOptimizer(_sgd(), ClassGrouping([0] * NUM_CLASSES))
    gbg, _ = _fit(GBGModel.from_model(_network(), mode=mode), one_group)
    for want, have in zip(plain.get_weights(), gbg.get_weights()):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["exact", "representation"])
@pytest.mark.slow
def test_settings_from_the_optimizer_equal_settings_on_the_model(mode):
    on_model, _ = _fit(GBGModel.from_model(_network(), GROUPING, mode=mode, normalization="l2"), _sgd())
    on_optimizer, _ = _fit(GBGModel.from_model(_network(), mode=mode),
                           GBGOptimizer(_sgd(), GROUPING, normalization="l2"))
    loss_plus, _ = _fit(GBGModel.from_model(_network(), mode=mode),
                        GBGOptimizer(_sgd(), GROUPING, normalization="loss+"))
    want, have, other = (_network_weights(m) for m in (on_model, on_optimizer, loss_plus))
    assert len(want) == len(have) == len(other) > 0
    for w, h in zip(want, have):
        np.testing.assert_array_equal(h, w)
    assert not np.allclose(other[0], want[0])  # the setting matters


def _network_weights(model):
    """The network's weights (a grouping given to the model adds its int32 `gbg_groups` variable)."""
    return [v.numpy() for v in model.weights if v.name != "gbg_groups"]


@pytest.mark.parametrize("normalization", ["none", "loss+"])
def test_apply_group_gradients_matches_numpy(normalization):
    rng = np.random.default_rng(4)
    shapes = [(3, 2), (2,)]
    groups = [[rng.normal(size=s) for s in shapes] for _ in range(3)]
    groups[2] = [-0.8 * g + 0.3 * rng.normal(size=g.shape) for g in groups[0]]  # a conflicting pair
    losses = np.array([0.5, 1.2, 2.0])
    start = [rng.normal(size=s) for s in shapes]
    variables = [keras.Variable(v.astype("float32")) for v in start]
    optimizer = GBGOptimizer(keras.optimizers.SGD(0.5), normalization=normalization, max_iterations=5000,
                             tolerance=1e-12)
    alpha = optimizer.apply_group_gradients([[g.astype("float32") for g in gs] for gs in groups], variables,
                                            losses=losses)
    flat = np.array([np.concatenate([g.reshape(-1) for g in gs]) for gs in groups])
    scale = np.ones(3) if normalization == "none" else losses * np.linalg.norm(flat, axis=1)
    expected = min_norm_weights(flat / scale[:, None], solver="cvxopt")
    assert np.all(expected > 1e-3)  # an interior, non-trivial solution
    np.testing.assert_allclose(alpha.numpy(), expected, atol=1e-4)
    for i, variable in enumerate(variables):
        direction = sum(a * gs[i] for a, gs in zip(expected, groups))
        np.testing.assert_allclose(variable.numpy(), start[i] - 0.5 * direction, atol=1e-4)
    assert int(optimizer.iterations) == 1


def test_absent_and_zero_gradient_groups_get_no_weight():
    optimizer = GBGOptimizer(keras.optimizers.SGD(1.0), normalization="none")
    grads = [[np.array([1.0, 0.0], "float32")], [np.array([0.0, 0.0], "float32")], [np.array([0.0, 3.0], "float32")]]
    alpha = optimizer.group_weights(grads).numpy()  # the zero gradient counts as absent by default
    np.testing.assert_allclose(alpha, [0.9, 0.0, 0.1], atol=1e-5)  # 1/||g||^2 weights of orthogonal gradients
    alpha = optimizer.group_weights(grads, present=[True, False, False]).numpy()
    np.testing.assert_allclose(alpha, [1.0, 0.0, 0.0])


def test_serialization_and_save_load(tmp_path):
    optimizer = GBGOptimizer(_sgd(), GROUPING, normalization="l2", solver="frank_wolfe", max_iterations=40,
                             tolerance=1e-5, name="gbg_sgd")
    config = optimizer.get_config()
    json.dumps(config)
    assert config["inner_optimizer"]["class_name"] == "SGD" and config["grouping"] == GROUPING.get_config()
    revived = helpers.assert_config_round_trip(optimizer)
    assert isinstance(revived.inner_optimizer, keras.optimizers.SGD) and revived.inner_optimizer.momentum == 0.9
    model, _ = _fit(GBGModel.from_model(_network()), optimizer)
    reloaded = helpers.assert_keras_save_load(model, X[:5], tmp_path)
    assert isinstance(reloaded.optimizer, GBGOptimizer) and reloaded.optimizer.grouping == GROUPING
    assert int(reloaded.optimizer.iterations) == 6
    for want, have in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_allclose(np.asarray(have), np.asarray(want))  # momentum slots too
    reloaded.fit(X[:16], Y[:16], batch_size=16, verbose=0)
    assert int(reloaded.optimizer.iterations) == 7


def test_bad_input():
    with pytest.raises(TypeError, match="learning_rate"):
        GBGOptimizer(keras.optimizers.SGD(), learning_rate=0.1)
    with pytest.raises(TypeError, match="inner_optimizer"):
        GBGOptimizer(0.1)
    with pytest.raises(ValueError, match="normalization"):
        GBGOptimizer(keras.optimizers.SGD(), normalization="l1")
    with pytest.raises(ValueError, match="solver"):
        GBGOptimizer(keras.optimizers.SGD(), solver="cvxopt")
    with pytest.raises(ValueError, match="losses"):
        GBGOptimizer(keras.optimizers.SGD(), normalization="loss+").group_weights([[np.ones(2)], [np.zeros(2)]])
    model = GBGModel.from_model(_network(), GROUPING, normalization="l2")
    model.compile(GBGOptimizer(keras.optimizers.SGD(), normalization="none"),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="model normalization='l2', optimizer normalization='none'"):
        model.train_on_batch(X[:16], Y[:16])
