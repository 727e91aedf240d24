"""GBGConfig: the one owner of GBG's grouping and solver settings, and who holds it (the model or the optimizer)."""

import inspect
import json

import keras
import numpy as np
import pytest

from keras_longtail import models
from keras_longtail.gbg import ClassGrouping
from keras_longtail.gbg import GBGConfig
from keras_longtail.gbg import GBGMixin
from keras_longtail.gbg import GBGModel
from keras_longtail.gbg import GBGOptimizer
from tests import helpers

GROUPING = ClassGrouping([0, 0, 1, 1, 2, 2])
X = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32)
Y = np.arange(16) % 6


def _network():
    keras.utils.set_random_seed(3)
    return models.mlp(6, (5,), hidden_units=(8,))


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_defaults_are_stated_once_and_are_the_official_codes():
    # GBG_v1: get_MGDA_weights hard-codes "loss+"; MGDA's MinNormSolver.MAX_ITER = 250
    config = GBGConfig()
    assert config.get_config() == {"grouping": None, "normalization": "loss+", "solver": "active_set",
                                   "max_iterations": 250, "tolerance": 1e-6}
    # the constructors that take the settings leave them at None, meaning "GBGConfig's default"
    for function in (GBGMixin.__init__, GBGOptimizer.__init__):
        parameters = inspect.signature(function).parameters
        assert all(parameters[key].default is None
                   for key in ("grouping", "normalization", "solver", "max_iterations", "tolerance"))
    assert GBGOptimizer(keras.optimizers.SGD()).gbg_config == config
    assert GBGModel.from_model(_network(), GROUPING).gbg_config == GBGConfig(GROUPING)


def test_round_trip_replace_and_equality():
    config = GBGConfig([0, 1, 1], normalization="l2", solver="frank_wolfe", max_iterations=40, tolerance=1e-5)
    assert config.grouping == ClassGrouping([0, 1, 1])
    revived = helpers.assert_config_round_trip(config)
    assert revived == config and json.loads(json.dumps(config.get_config())) == config.get_config()
    changed = config.replace(solver="pgd")
    assert changed.solver == "pgd" and config.solver == "frank_wolfe"  # a copy; the original is unchanged
    assert config.differences(changed) == {"solver": ("frank_wolfe", "pgd")}
    assert config.differences(config.replace(grouping=None)) == {}  # no grouping is no difference
    assert GBGConfig.from_arguments(GROUPING, normalization=None, tolerance=1e-3) == GBGConfig(GROUPING, tolerance=1e-3)
    with pytest.raises(AttributeError):
        config.solver = "pgd"  # immutable: one owner, no silent edits


def test_bad_settings_say_what_was_received():
    with pytest.raises(ValueError, match="normalization.*l1"):
        GBGConfig(normalization="l1")
    with pytest.raises(ValueError, match="solver.*cvxopt"):
        GBGConfig(solver="cvxopt")  # host solver: not usable inside a step
    with pytest.raises(ValueError, match="max_iterations"):
        GBGConfig(max_iterations=0)
    with pytest.raises(ValueError, match="tolerance"):
        GBGConfig(tolerance=-1.0)
    with pytest.raises(TypeError, match="speed"):
        GBGConfig().replace(speed=2)


def test_the_model_owns_its_configuration_when_given_a_grouping():
    model = GBGModel.from_model(_network(), GROUPING, normalization="l2")
    # a GBGOptimizer that agrees (no grouping of its own, same settings) is accepted
    model.compile(GBGOptimizer(keras.optimizers.SGD(), normalization="l2"), _loss())
    assert model.gbg_config == GBGConfig(GROUPING, normalization="l2")
    assert model.optimizer.gbg_config.grouping is None
    # one that brings a different grouping is rejected (compared, never merged), at the first step
    model = GBGModel.from_model(_network(), GROUPING)
    model.compile(GBGOptimizer(keras.optimizers.SGD(), ClassGrouping([0, 1, 2, 0, 1, 2])), _loss())
    with pytest.raises(ValueError, match="model grouping=.*optimizer grouping="):
        model.train_on_batch(X, Y)


def test_without_a_grouping_the_optimizer_owns_the_configuration():
    optimizer = GBGOptimizer(keras.optimizers.SGD(0.1), GROUPING, normalization="l2", solver="pgd")
    model = GBGModel.from_model(_network())
    assert model.gbg_config is None and model.normalization is None
    model.compile(optimizer, _loss())
    assert model.gbg_config is optimizer.gbg_config  # the same object: nothing copied, nothing to reconcile
    assert (model.normalization, model.solver) == ("l2", "pgd")
    assert model.get_config()["normalization"] is None  # not the model's: saved with the optimizer
    with pytest.raises(ValueError, match="give the solver settings to it.*Received: grouping=None, normalization='l2'"):
        GBGModel.from_model(_network(), normalization="l2")
    model = GBGModel.from_model(_network())
    model.compile(GBGOptimizer(keras.optimizers.SGD(), [0, 1, 1]), _loss())
    with pytest.raises(ValueError, match="grouping.*6 classes"):
        model.train_on_batch(X, Y)


def test_the_step_uses_the_owners_settings():
    # The same settings owned by the model or by the optimizer give the same step; other settings another one.
    def one_step(model, optimizer):
        model.compile(optimizer, _loss())
        model.train_on_batch(X, Y)
        return [np.asarray(v) for v in model.trainable_weights]

    on_model = one_step(GBGModel.from_model(_network(), GROUPING, mode="exact", normalization="none"),
                        keras.optimizers.SGD(0.5))
    on_optimizer = one_step(GBGModel.from_model(_network(), mode="exact"),
                            GBGOptimizer(keras.optimizers.SGD(0.5), GROUPING, normalization="none"))
    default = one_step(GBGModel.from_model(_network(), GROUPING, mode="exact"), keras.optimizers.SGD(0.5))
    for want, have in zip(on_model, on_optimizer):
        np.testing.assert_allclose(have, want, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(on_model, default)) > 1e-4
