"""GBG's `group_loss` option: "mean" (the paper's and the code's) and "class_balanced" (ours, issue 17)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail import gbg as lt_gbg
from keras_longtail import models
from keras_longtail import recipes
from keras_longtail.gbg import ClassGrouping
from keras_longtail.ops import min_norm_weights
from keras_longtail.training import GBGModel
from tests import helpers

NUM_CLASSES = 6
# several classes per group; class 2 is absent from the batch (so m_0 = 2 of its 3 classes), class 5 alone
GROUPING = ClassGrouping([0, 0, 0, 1, 1, 2])
Y = np.array([0] * 6 + [1] * 3 + [3] * 4 + [4] * 1 + [5] * 2)  # unequal counts inside groups 0 and 1
Y = Y[np.random.default_rng(4).permutation(len(Y))]
X = np.random.default_rng(0).normal(size=(len(Y), 5)).astype(np.float32)
W = np.random.default_rng(2).uniform(0.5, 2.0, size=len(Y)).astype(np.float32)
# 48 examples for multi-step fits (batches of 16 with unequal class counts)
X48 = np.random.default_rng(5).normal(size=(48, 5)).astype(np.float32)
Y48 = np.random.default_rng(6).choice(NUM_CLASSES, size=48, p=[0.4, 0.2, 0.05, 0.2, 0.1, 0.05])
W48 = np.random.default_rng(7).uniform(0.5, 2.0, size=48).astype(np.float32)


def _network():
    keras.utils.set_random_seed(3)
    return models.mlp(NUM_CLASSES, (5,), hidden_units=(8,))


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _weights_of(model):
    """The wrapped network's weights (without `gbg_groups`)."""
    return [v.numpy() for v in model.weights if v is not model.gbg_groups]


def _numpy_group_losses(logits, y, w, grouping, group_loss):
    """The per-group losses written out in numpy (float64)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    nll = -(shifted[np.arange(len(y)), y] - np.log(np.exp(shifted).sum(axis=1)))
    losses = []
    for g in range(grouping.num_groups):
        classes = [c for c in grouping.members(g) if np.any(y == c)]
        if not classes:
            losses.append(0.0)
        elif group_loss == "mean":
            selected = np.isin(y, classes)
            losses.append(np.sum(w[selected] * nll[selected]) / selected.sum())
        else:
            losses.append(np.mean([np.sum(w[y == c] * nll[y == c]) / np.sum(y == c) for c in classes]))
    return np.array(losses)


def _tf_group_loss(network, x, y, w, classes, group_loss):
    """One group's loss as a differentiable tf expression (the reference step's)."""
    logits = network(x, training=True)
    nll = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True) * w
    present = [c for c in classes if np.any(y == c)]
    if group_loss == "mean":
        selected = np.isin(y, present)
        return tf.reduce_sum(tf.boolean_mask(nll, selected)) / selected.sum()
    return tf.add_n([tf.reduce_sum(tf.boolean_mask(nll, y == c)) / np.sum(y == c) for c in present]) / len(present)


def _reference_step(network, x, y, w, grouping, group_loss, lr):
    """One SGD step of exact-mode GBG with the loss+ normalizer, written directly (cvxopt weights)."""
    variables = network.trainable_variables
    gradients, flat, losses, present = [], [], [], []
    for g in range(grouping.num_groups):
        if not np.isin(y, grouping.members(g)).any():
            present.append(False)
            gradients.append([np.zeros(v.shape) for v in variables])
            flat.append(np.zeros(sum(int(np.prod(v.shape)) for v in variables)))
            losses.append(0.0)
            continue
        present.append(True)
        with tf.GradientTape() as tape:
            loss = _tf_group_loss(network, x, y, w, grouping.members(g), group_loss)
        grads = [t.numpy() for t in tape.gradient(loss, variables)]
        gradients.append(grads)
        flat.append(np.concatenate([t.reshape(-1) for t in grads]))
        losses.append(float(loss))
    flat, losses = np.array(flat, np.float64), np.array(losses)
    scale = losses * np.linalg.norm(flat, axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    alpha = min_norm_weights(flat / scale[:, None], solver="cvxopt", mask=present)
    return [v.numpy() - lr * sum(a * grads[i] for a, grads in zip(alpha, gradients))
            for i, v in enumerate(variables)], alpha


@pytest.mark.parametrize("group_loss", ["mean", "class_balanced"])
def test_group_losses_match_numpy(group_loss):
    network = _network()
    model = GBGModel.from_model(network, GROUPING, group_loss=group_loss)
    model.compile("sgd", _loss())
    logits = network(X, training=True)

    @tf.function
    def group_losses(y, w):
        weights, present = model._gbg_group_sample_weights(y, w, model._gbg_config_in_force())
        return [model.compute_loss(x=X, y=y, y_pred=logits, sample_weight=v) for v in weights], present

    losses, present = group_losses(tf.constant(Y), tf.constant(W))
    expected = _numpy_group_losses(logits.numpy(), Y, W, GROUPING, group_loss)
    np.testing.assert_allclose([float(v) for v in losses], expected, rtol=1e-5)
    assert present.numpy().tolist() == [True, True, True]
    # the batch has unequal class counts inside groups 0 and 1: the two options differ there
    other = _numpy_group_losses(logits.numpy(), Y, W, GROUPING,
                                "mean" if group_loss == "class_balanced" else "class_balanced")
    assert np.all(np.abs(other[:2] - expected[:2]) > 1e-3) and other[2] == pytest.approx(expected[2])


@pytest.mark.parametrize("group_loss", ["mean", "class_balanced"])
def test_one_exact_step_matches_reference(group_loss):
    network = _network()
    expected, alpha = _reference_step(network, X, Y, W, GROUPING, group_loss, lr=0.5)
    assert np.all(alpha > 1e-3)  # a non-trivial solve
    model = GBGModel.from_model(network, GROUPING, mode="exact", group_loss=group_loss, max_iterations=2000,
                                tolerance=1e-10)
    model.compile(keras.optimizers.SGD(0.5), _loss())
    model.train_on_batch(X, Y, sample_weight=W)
    for want, have in zip(expected, _weights_of(model)):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-6)


def _step(grouping, group_loss, x, y, w, mode="backbone"):
    model = GBGModel.from_model(_network(), grouping, mode=mode, group_loss=group_loss)
    model.compile(keras.optimizers.SGD(0.5), _loss())
    alpha = tf.function(model.gbg_gradients)(x, y, w)[1].numpy()
    model.train_on_batch(x, y, sample_weight=w)
    return _weights_of(model), alpha


@pytest.mark.parametrize("mode", ["backbone", "representation"])
def test_equals_mean_when_groups_have_one_class_or_equal_counts(mode):
    one_class_groups = ClassGrouping(list(range(NUM_CLASSES)))
    equal = np.repeat([0, 1, 3, 4, 5], 3)  # every present class 3 times (class 2 absent)
    cases = {"one class per group": (one_class_groups, X, Y, W),
             "equal counts": (GROUPING, X[:15], equal, W[:15]),
             "unequal counts (control)": (GROUPING, X, Y, W)}
    for name, (grouping, x, y, w) in cases.items():
        mean_weights, mean_alpha = _step(grouping, "mean", x, y, w, mode)
        balanced_weights, balanced_alpha = _step(grouping, "class_balanced", x, y, w, mode)
        difference = max(np.abs(a - b).max() for a, b in zip(mean_weights + [mean_alpha],
                                                               balanced_weights + [balanced_alpha]))
        if name.endswith("(control)"):
            assert difference > 1e-3, name
        else:
            assert difference < 1e-6, (name, difference)


def _fit(group_loss, jit_compile=False, solve_every=1, mode="backbone"):
    model = GBGModel.from_model(_network(), GROUPING, mode=mode, group_loss=group_loss, solve_every=solve_every)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), _loss(), jit_compile=jit_compile)
    history = model.fit(X48, Y48, sample_weight=W48, batch_size=16, shuffle=False, verbose=0)
    return _weights_of(model), history.history["loss"]


def test_jit_compile_equals_graph():
    expected, expected_loss = _fit("class_balanced")
    got, loss = _fit("class_balanced", jit_compile=True)
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)


@pytest.mark.parametrize("mode,solve_every", [("backbone", 1), ("representation", 1), ("exact", 2)])
def test_mirrored_strategy_equals_one_device(mode, solve_every):
    # Per-replica class counts differ from the global ones (batch 16 over two replicas): only the all-reduced
    # counts give one device's weights.
    expected, expected_loss = _fit("class_balanced", solve_every=solve_every, mode=mode)
    got, loss = helpers.run_mirrored(lambda strategy: _fit("class_balanced", solve_every=solve_every, mode=mode))
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_stays_close_to_float32(policy):
    expected, _ = _fit("class_balanced")
    keras.config.set_dtype_policy(policy)
    try:
        got, _ = _fit("class_balanced")
    finally:
        keras.config.set_dtype_policy("float32")
    for want, have in zip(expected, got):
        assert have.dtype == np.float32
        np.testing.assert_allclose(have, want, rtol=0, atol={"mixed_bfloat16": 3e-3, "mixed_float16": 5e-4}[policy])
    # measured largest differences: 6.2e-4 (bfloat16), 7.5e-5 (float16)


def test_serialization_and_save_load(tmp_path):
    model = GBGModel.from_model(_network(), GROUPING, group_loss="class_balanced")
    model.compile("sgd", _loss())
    model.fit(X, Y, batch_size=16, verbose=0)
    assert model.get_config()["group_loss"] == "class_balanced"
    helpers.assert_config_round_trip(model)
    reloaded = helpers.assert_keras_save_load(model, X[:5], tmp_path)
    assert isinstance(reloaded, GBGModel) and reloaded.group_loss == "class_balanced"
    # a config written before the option existed loads with the paper's group loss
    config = model.get_config()
    del config["group_loss"]
    assert GBGModel.from_config(config).group_loss == "mean"
    assert GBGModel.from_model(_network(), GROUPING).group_loss == "mean"


def test_bad_input():
    with pytest.raises(ValueError, match=r"Expected `group_loss` to be one of \['class_balanced', 'mean'\]. "
                                         r"Received: group_loss='balanced'"):
        GBGModel.from_model(_network(), GROUPING, group_loss="balanced")
    with pytest.raises(ValueError, match="Received: group_loss=None"):
        GBGModel.from_model(_network(), GROUPING, group_loss=None)


def test_recipe_passes_group_loss_through():
    result = recipes.run_training("digits-lt", method="gbg", epochs=1, steps_per_epoch=1, verbose=0, num_groups=2,
                                  gbg_options={"group_loss": "class_balanced"})
    assert result["gbg_options"] == {"group_loss": "class_balanced"}
    assert result["gbg_group_loss"] == "class_balanced"


def test_recipe_passes_weighting_through_and_rejects_an_unknown_one_before_grouping(monkeypatch):
    result = recipes.run_training("digits-lt", method="gbg", epochs=1, steps_per_epoch=1, verbose=0, num_groups=2,
                                  gbg_options={"weighting": "average"})
    assert result["gbg_weighting"] == "average" and result["gbg_options"] == {"weighting": "average"}
    # the group-aware completion sampler puts both groups in the batch: alpha = (1/2, 1/2), nothing solved
    logs = result["epoch_logs"]["fit"][0]
    assert (logs["gbg_alpha_0"], logs["gbg_alpha_1"], logs["gbg_solver_gap"]) == (0.5, 0.5, 0.0)

    def no_grouping_pass(*args, **kwargs):
        raise AssertionError("the grouping pass ran before the options were checked")

    monkeypatch.setattr(lt_gbg, "group_classes", no_grouping_pass)
    with pytest.raises(ValueError, match=r"Expected gbg_options\['weighting'\].*Received: weighting='mgda'"):
        recipes.run_training("digits-lt", method="gbg", epochs=1, steps_per_epoch=1, verbose=0, num_groups=2,
                             gbg_options={"weighting": "mgda"})


def test_recipe_rejects_an_unknown_group_loss_before_grouping():
    with pytest.raises(ValueError, match=r"Expected gbg_options\['group_loss'\].*Received: group_loss='balanced'"):
        recipes.run_training("digits-lt", method="gbg", epochs=1, steps_per_epoch=1, verbose=0, num_groups=2,
                             gbg_options={"group_loss": "balanced"})


def test_grouping_held_by_a_gbg_optimizer():
    # Without a grouping on the model, the class-to-group ids come from the compiled GBGOptimizer's configuration.
    from keras_longtail.optimizers import GBGOptimizer

    expected, _ = _step(GROUPING, "class_balanced", X, Y, W)
    model = GBGModel.from_model(_network(), None, group_loss="class_balanced")
    model.compile(GBGOptimizer(keras.optimizers.SGD(0.5), GROUPING), _loss())
    model.train_on_batch(X, Y, sample_weight=W)
    assert len(model.weights) == len(expected)
    for want, have in zip(expected, [v.numpy() for v in model.weights]):
        np.testing.assert_allclose(have, want, rtol=1e-6, atol=1e-7)
