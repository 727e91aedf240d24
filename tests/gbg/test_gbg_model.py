import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail import models
from keras_longtail.gbg import ClassGrouping
from keras_longtail.gbg import GBGConfig
from keras_longtail.ops import min_norm_weights
from keras_longtail.training import GBGModel
from tests import helpers

NUM_CLASSES = 6
GROUPING = ClassGrouping([0, 0, 1, 1, 2, 2])
X = np.random.default_rng(0).normal(size=(48, 5)).astype(np.float32)
Y = np.random.default_rng(1).choice(NUM_CLASSES, size=48, p=[0.4, 0.2, 0.15, 0.15, 0.1, 0.0])
W = np.random.default_rng(2).uniform(0.5, 2.0, size=48).astype(np.float32)


def _network():
    keras.utils.set_random_seed(3)
    return models.mlp(NUM_CLASSES, (5,), hidden_units=(8,))


def _loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _network_weights(model):
    """The weights of the wrapped network: the model's without its `gbg_groups` variable."""
    return [v.numpy() for v in model.weights if v is not model.gbg_groups]


def _fit(model, optimizer=None, jit_compile=False, batch_size=16, sample_weight=None, epochs=1):
    model.compile(optimizer or keras.optimizers.SGD(0.1, momentum=0.9), _loss(), jit_compile=jit_compile)
    history = model.fit(X, Y, sample_weight=sample_weight, batch_size=batch_size, epochs=epochs,
                        shuffle=False, verbose=0)
    return model, history


def _group_mean_loss(model, x, y, w, classes):
    selected = np.isin(y, classes)
    logits = model(x[selected], training=True)
    losses = keras.losses.sparse_categorical_crossentropy(y[selected], logits, from_logits=True)
    return tf.reduce_sum(losses * w[selected]) / selected.sum()


def _reference_step(network, x, y, w, grouping, mode, normalization, lr, weighting="min_norm"):
    """One SGD step of GBG written directly: per-group tapes, cvxopt weights (or the mean over the present
    groups), numpy update."""
    variables = network.trainable_variables
    head = network.get_layer("classifier").trainable_variables
    heads = {id(v) for v in head}
    solved = {"exact": variables, "representation": head,
              "backbone": [v for v in variables if id(v) not in heads]}[mode]
    gradients, solve_on, losses, present = [], [], [], []
    for g in range(grouping.num_groups):
        classes = grouping.members(g)
        if not np.isin(y, classes).any():
            present.append(False)
            gradients.append([np.zeros(v.shape) for v in variables])
            solve_on.append(np.zeros(sum(int(np.prod(v.shape)) for v in solved)))
            losses.append(0.0)
            continue
        present.append(True)
        with tf.GradientTape() as tape:
            loss = _group_mean_loss(network, x, y, w, classes)
        grads = [t.numpy() for t in tape.gradient(loss, variables)]
        gradients.append(grads)
        used = [t for t, v in zip(grads, variables) if any(v is s for s in solved)]
        solve_on.append(np.concatenate([t.reshape(-1) for t in used]))
        losses.append(float(loss))
    solve_on, losses = np.array(solve_on, np.float64), np.array(losses)
    norms = np.linalg.norm(solve_on, axis=1)
    scale = {"none": np.ones_like(losses), "l2": norms, "loss": losses, "loss+": losses * norms}[normalization]
    scale = np.where(scale > 0, scale, 1.0)
    if weighting == "average":
        alpha = np.asarray(present, np.float64) / sum(present)
    else:
        alpha = min_norm_weights(solve_on / scale[:, None], solver="cvxopt", mask=present)
    return [v.numpy() - lr * sum(a * grads[i] for a, grads in zip(alpha, gradients))
            for i, v in enumerate(variables)], alpha


@pytest.mark.parametrize("mode", ["backbone", "exact", "representation"])
@pytest.mark.parametrize("normalization", ["none", "loss+"])
def test_one_step_matches_reference(mode, normalization):
    grouping = ClassGrouping([0, 1, 2, 2, 1, 0])
    network = _network()
    x, y, w = X[:16], Y[:16], W[:16]
    expected, alpha = _reference_step(network, x, y, w, grouping, mode, normalization, lr=0.5)
    assert np.all(alpha > 1e-3) and not np.allclose(alpha, 1 / 3, atol=1e-2)  # a non-trivial solve
    model = GBGModel.from_model(network, grouping, mode=mode, normalization=normalization,
                                max_iterations=2000, tolerance=1e-10)
    model.compile(keras.optimizers.SGD(0.5), _loss())
    model.train_on_batch(x, y, sample_weight=w)
    for want, have in zip(expected, _network_weights(model)):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["backbone", "exact", "representation"])
def test_absent_group_gets_zero_weight(mode):
    network = _network()
    keep = np.isin(Y, [0, 1, 4])  # group 1 (classes 2, 3) absent
    x, y = X[keep][:16], Y[keep][:16]
    model = GBGModel.from_model(network, GROUPING, mode=mode)
    model.compile(keras.optimizers.SGD(0.5), _loss())
    gradients, alpha, _, loss = tf.function(model.gbg_gradients)(x, y)
    alpha = alpha.numpy()
    assert alpha[1] == 0.0 and alpha.sum() == pytest.approx(1.0, abs=1e-6) and np.isfinite(float(loss))
    assert all(np.all(np.isfinite(g.numpy())) for g in gradients)
    expected, _ = _reference_step(network, x, y, np.ones(len(y), np.float32), GROUPING, mode, "loss+", lr=0.5)
    model.train_on_batch(x, y)
    for want, have in zip(expected, _network_weights(model)):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode", ["exact", "representation"])
def test_one_group_equals_the_inner_optimizer(mode):
    plain, _ = _fit(_network(), sample_weight=W, epochs=2)
    gbg, history = _fit(GBGModel.from_model(_network(), ClassGrouping([0] * NUM_CLASSES), mode=mode),
                        sample_weight=W, epochs=2)
    reference_history = plain.history.history
    for want, have in zip(plain.get_weights(), _network_weights(gbg)):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(history.history["loss"], reference_history["loss"], rtol=1e-5)
    assert gbg.optimizer.iterations.numpy() == plain.optimizer.iterations.numpy() == 6


def _schedule_fit(jit_compile=False):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.2, decay_steps=1, decay_rate=0.5)
    model = GBGModel.from_model(_network(), GROUPING, mode="exact")
    return _fit(model, keras.optimizers.SGD(schedule, momentum=0.9), jit_compile=jit_compile)[0]


@pytest.mark.parametrize("mode, weighting", [("backbone", "min_norm"), ("exact", "min_norm"),
                                             ("representation", "min_norm"), ("backbone", "average")])
@pytest.mark.slow
def test_mirrored_strategy_and_jit_equal_one_device(mode, weighting):
    def fit(jit_compile=False):
        model = GBGModel.from_model(_network(), GROUPING, mode=mode, weighting=weighting)
        model, history = _fit(model, jit_compile=jit_compile, batch_size=16)
        return model.get_weights(), history.history["loss"]

    expected, expected_loss = fit()
    mirrored = helpers.run_mirrored(lambda strategy: fit())
    jit = fit(jit_compile=True)
    for name, (got, loss) in (("mirrored", mirrored), ("jit", jit)):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)
        # the logged loss is the global batch loss (the train-step contract), not a replica's share
        np.testing.assert_allclose(loss, expected_loss, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("classes", [range(NUM_CLASSES), [0, 1, 4]])  # every group, group 1 absent
def test_average_weighting_is_the_mean_of_the_present_groups_gradients(classes):
    # The paper's GBG without MOO: d = (1 / |P|) sum_{g in P} grad L_g, against per-group tapes.
    keep = np.isin(Y, list(classes))
    x, y, w = X[keep][:16], Y[keep][:16], W[keep][:16]
    network = _network()
    expected, alpha = _reference_step(network, x, y, w, GROUPING, "backbone", "loss+", 0.5, weighting="average")
    solved, _ = _reference_step(network, x, y, w, GROUPING, "backbone", "loss+", 0.5)
    assert not all(np.allclose(a, b, atol=1e-4) for a, b in zip(solved, expected))  # the solve differs
    model = GBGModel.from_model(network, GROUPING, weighting="average")
    model.compile(keras.optimizers.SGD(0.5), _loss())
    model.train_on_batch(x, y, sample_weight=w)
    for want, have in zip(expected, _network_weights(model)):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-6)
    # the logs: alpha uniform over the present groups, held (no change), no solve (gap 0)
    model, history = _fit(GBGModel.from_model(_network(), GROUPING, weighting="average"), epochs=2)
    assert history.history["gbg_solver_gap"] == [0.0, 0.0]
    assert model.get_config()["weighting"] == "average"
    helpers.assert_config_round_trip(model)


def test_average_weighting_logs_uniform_alpha():
    model, history = _fit(GBGModel.from_model(_network(), GROUPING, weighting="average"), batch_size=len(X))
    assert [history.history[f"gbg_alpha_{g}"][0] for g in range(3)] == pytest.approx([1 / 3] * 3, abs=1e-6)
    assert history.history["gbg_alpha_max"][0] == pytest.approx(1 / 3, abs=1e-6)


def test_schedules_pass_through_and_training_moves_weights():
    model = _schedule_fit()
    assert model.optimizer.iterations.numpy() == 3
    assert float(model.optimizer.learning_rate) == pytest.approx(0.2 * 0.5 ** 3)
    assert not np.allclose(_network_weights(model)[0], _network().get_weights()[0])


def test_serialization_and_save_load(tmp_path):
    model, _ = _fit(GBGModel.from_model(_network(), GROUPING, mode="representation", normalization="l2",
                                        solver="frank_wolfe", max_iterations=50, tolerance=1e-5))
    config = model.get_config()
    assert config["grouping"] == {"groups": GROUPING.groups, "num_groups": 3} and config["mode"] == "representation"
    helpers.assert_config_round_trip(model)
    reloaded = helpers.assert_keras_save_load(model, X[:5], tmp_path)
    assert isinstance(reloaded, GBGModel) and reloaded.grouping == GROUPING
    assert (reloaded.mode, reloaded.normalization, reloaded.solver, reloaded.max_iterations) == (
        "representation", "l2", "frank_wolfe", 50)
    reloaded.fit(X[:16], Y[:16], batch_size=16, verbose=0)


def test_defaults_are_the_official_codes():
    # GBG_v1: alpha from the backbone's gradients (get_group_g_grad_on_backbone), normalized "loss+"
    # (get_MGDA_weights hard-codes it), solved every step.
    model = GBGModel.from_model(_network(), GROUPING)
    settings = model.gbg_settings()
    assert (model.mode, settings["normalization"], model.solve_every, model.head_layer) == (
        "backbone", "loss+", 1, "classifier")
    # the model owns its configuration: GBGConfig's defaults, written out in its config
    assert model.gbg_config == GBGConfig(GROUPING)
    assert model.get_config()["normalization"] == "loss+"


def test_backbone_mode_solves_without_the_classifier():
    # Backbone and exact mode differ only in the weights alpha is solved on (the update uses all of them).
    grouping = ClassGrouping([0, 1, 2, 2, 1, 0])
    x, y, ones = X[:16], Y[:16], np.ones(16, np.float32)
    network = _network()
    alphas = {}
    for mode in ("backbone", "exact"):
        model = GBGModel.from_model(network, grouping, mode=mode, max_iterations=2000, tolerance=1e-10)
        model.compile(keras.optimizers.SGD(0.1), _loss())
        alphas[mode] = tf.function(model.gbg_gradients)(x, y)[1].numpy()
        _, reference = _reference_step(network, x, y, ones, grouping, mode, "loss+", lr=0.1)
        np.testing.assert_allclose(alphas[mode], reference, atol=1e-4)
    assert np.abs(alphas["backbone"] - alphas["exact"]).max() > 1e-2


def test_alpha_change_is_the_mean_step_to_step_move_of_the_reference_alpha():
    # Three full-solve steps per epoch, two epochs, plain SGD: the per-step alpha written directly (per-group
    # tapes, cvxopt), then 0.5 * ||alpha(t) - alpha(t - 1)||_1 averaged over each epoch's steps after its first
    # (the step across the epoch boundary is not counted: the state resets with the metrics).
    network, alphas = _network(), []
    for _ in range(2):
        for start in range(0, len(X), 16):
            rows = slice(start, start + 16)
            new, alpha = _reference_step(network, X[rows], Y[rows], np.ones(16, np.float32), GROUPING, "backbone",
                                         "loss+", 0.1)
            for variable, value in zip(network.trainable_variables, new):
                variable.assign(value)
            alphas.append(np.asarray(alpha))
    moves = [0.5 * np.abs(alphas[t] - alphas[t - 1]).sum() for t in range(len(alphas))]
    expected = [np.mean(moves[1:3]), np.mean(moves[4:6])]
    assert min(expected) > 1e-2  # a non-trivial value: alpha does move
    # and the epoch's mean of each group's weight, over all three steps
    means = [np.mean(alphas[0:3], axis=0), np.mean(alphas[3:6], axis=0)]
    assert np.abs(means[0] - alphas[0]).max() > 1e-2  # the mean is not one step's alpha

    def check(history):
        assert history["gbg_alpha_change"] == pytest.approx(expected, abs=1e-4)
        for g in range(GROUPING.num_groups):
            assert history[f"gbg_alpha_{g}"] == pytest.approx([m[g] for m in means], abs=1e-4)
        assert f"gbg_alpha_{GROUPING.num_groups}" not in history

    _, history = _fit(GBGModel.from_model(_network(), GROUPING), optimizer=keras.optimizers.SGD(0.1), epochs=2)
    check(history.history)
    # the grouping brought by a compiled GBGOptimizer sizes the state at compile: the same values
    from keras_longtail.optimizers import GBGOptimizer

    _, brought = _fit(GBGModel.from_model(_network(), None),
                      optimizer=GBGOptimizer(keras.optimizers.SGD(0.1), GROUPING), epochs=2)
    check(brought.history)
    _, compiled = _fit(GBGModel.from_model(_network(), GROUPING), optimizer=keras.optimizers.SGD(0.1), epochs=2,
                       jit_compile=True)  # the same inside an XLA-compiled step
    check(compiled.history)


def test_alpha_change_is_zero_when_alpha_cannot_move():
    # limiting cases: one group (alpha = 1 at every step), and alpha solved once and held
    _, history = _fit(GBGModel.from_model(_network(), ClassGrouping([0] * NUM_CLASSES)), epochs=2)
    assert history.history["gbg_alpha_change"] == [0.0, 0.0]
    assert history.history["gbg_alpha_0"] == [1.0, 1.0]
    present = ClassGrouping([0, 0, 0, 1, 1, 1])  # both groups in every batch of 16: the held alpha is applied as is
    assert all(np.isin(Y[s:s + 16], [0, 1, 2]).any() and np.isin(Y[s:s + 16], [3, 4, 5]).any() for s in (0, 16, 32))
    model, history = _fit(GBGModel.from_model(_network(), present, solve_every=10**9), epochs=2)
    assert history.history["gbg_alpha_change"] == pytest.approx([0.0, 0.0], abs=1e-7)
    held = model.gbg_alpha.numpy()
    assert 0.05 < held[0] < 0.95  # the held alpha is the per-group mean of every epoch
    for g in range(2):
        assert history.history[f"gbg_alpha_{g}"] == pytest.approx([held[g]] * 2, abs=1e-6)
    evaluated = model.evaluate(X, Y, verbose=0, return_dict=True)
    assert "gbg_alpha_change" not in evaluated and "gbg_alpha_0" not in evaluated
    assert all("gbg_alpha" not in v.path for v in model.weights if v is not model.gbg_alpha)
    model.reset_metrics()
    assert [float(v.numpy()) for v in model._gbg_alpha_holder.value] == [0.0, 0.0, 0.0]
    assert model._gbg_group_alpha_holder.value[1].numpy().tolist() == [0.0, 0.0]


def test_bad_input():
    network = _network()
    no_grouping = GBGModel.from_model(network, None)  # allowed: a GBGOptimizer may bring it
    no_grouping.compile("sgd", _loss())
    with pytest.raises(ValueError, match="needs `grouping`.*Received: grouping=None"):
        no_grouping.train_on_batch(X[:4], Y[:4])
    with pytest.raises(ValueError, match="grouping"):
        GBGModel.from_model(network, ClassGrouping([0, 1, 1]))
    with pytest.raises(ValueError, match="mode"):
        GBGModel.from_model(network, GROUPING, mode="fast")
    with pytest.raises(ValueError, match="normalization"):
        GBGModel.from_model(network, GROUPING, normalization="l1")
    with pytest.raises(ValueError, match="solver"):
        GBGModel.from_model(network, GROUPING, solver="cvxopt")
    with pytest.raises(ValueError, match="head_layer"):
        GBGModel.from_model(network, GROUPING, mode="representation", head_layer="head")
    with pytest.raises(ValueError, match="Expected `weighting`.*Received: weighting='mgda'"):
        GBGModel.from_model(network, GROUPING, weighting="mgda")
    with pytest.raises(ValueError, match="solves nothing.*Received: solve_every=2 with weighting='average'"):
        GBGModel.from_model(network, GROUPING, solve_every=2, weighting="average")
    with pytest.raises(ValueError, match="mode='backbone' needs a layer named `head_layer`='head'"):
        GBGModel.from_model(network, GROUPING, head_layer="head")
    inputs = keras.Input((5,))
    head_only = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, name="classifier")(inputs))
    with pytest.raises(ValueError, match="trainable weights outside `head_layer`.*use mode='exact'"):
        GBGModel.from_model(head_only, GROUPING)
    GBGModel.from_model(head_only, GROUPING, mode="exact")  # exact mode solves on the classifier
    model = GBGModel.from_model(network, GROUPING)
    model.compile("sgd", _loss())
    with pytest.raises(tf.errors.InvalidArgumentError, match="y"):
        model.train_on_batch(X[:4], np.array([0, 1, 2, 7]))


def test_group_ids_that_do_not_fit_num_groups_are_rejected():
    # What loading the checkpoint of a model with more groups would put in `gbg_groups`.
    model = GBGModel.from_model(_network(), GROUPING)
    model.compile("sgd", _loss())
    ids = np.array(GROUPING.groups, np.int32)
    ids[0] = GROUPING.num_groups
    model.gbg_groups.assign(ids)
    with pytest.raises(ValueError, match="num_groups"):
        _ = model.grouping
    with pytest.raises(tf.errors.InvalidArgumentError, match="gbg_groups"):
        model.fit(X[:16], Y[:16], batch_size=16, verbose=0)


def _weights_of(model):
    """The wrapped network's weights: the model's without the GBG variables."""
    own = {id(getattr(model, name)) for name in ("gbg_groups", "gbg_alpha") if hasattr(model, name)}
    return [v.numpy() for v in model.weights if id(v) not in own]


def _amortized_reference(network, batches, grouping, every, lr):
    """GBG with alpha solved (cvxopt) on steps 0, k, 2k, ... and reused, renormalized on the present groups."""
    stored = None
    for step, (x, y) in enumerate(batches):
        present = np.array([np.isin(y, grouping.members(g)).any() for g in range(grouping.num_groups)])
        if step % every == 0:
            _, stored = _reference_step(network, x, y, np.ones(len(y), np.float32), grouping, "backbone", "loss+", lr)
            alpha = stored
        else:
            alpha = np.where(present, stored, 0.0)
            alpha = alpha / alpha.sum() if alpha.sum() > 0 else present / present.sum()
        update = [np.zeros(v.shape) for v in network.trainable_variables]
        for g in np.flatnonzero(present):
            with tf.GradientTape() as tape:
                loss = _group_mean_loss(network, x, y, np.ones(len(y), np.float32), grouping.members(g))
            for u, grad in zip(update, tape.gradient(loss, network.trainable_variables)):
                u += alpha[g] * grad.numpy()
        for v, u in zip(network.trainable_variables, update):
            v.assign(v.numpy() - lr * u)
    return [v.numpy() for v in network.weights], stored


@pytest.mark.slow
def test_solve_every_reuses_the_stored_alpha():
    every, lr = 3, 0.5
    batches = [(X[i:i + 8], Y[i:i + 8]) for i in range(0, 48, 8)]  # 6 steps: solves at 0 and 3
    expected, last_alpha = _amortized_reference(_network(), batches, GROUPING, every, lr)
    model = GBGModel.from_model(_network(), GROUPING, solve_every=every, max_iterations=2000, tolerance=1e-10)
    model.compile(keras.optimizers.SGD(lr), _loss())
    for x, y in batches:
        model.train_on_batch(x, y)
    for want, have in zip(expected, _weights_of(model)):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.gbg_alpha.numpy(), last_alpha, atol=1e-4)
    # The control: re-solving every step gives other weights on these batches.
    every_step, _ = _amortized_reference(_network(), batches, GROUPING, 1, lr)
    assert not all(np.allclose(a, b, atol=1e-4) for a, b in zip(every_step, expected))


@pytest.mark.slow
def test_solve_every_under_mirrored_strategy_and_jit_equals_one_device():
    def fit(jit_compile=False):
        model = GBGModel.from_model(_network(), GROUPING, solve_every=2)
        return _weights_of(_fit(model, jit_compile=jit_compile, batch_size=16)[0])

    expected = fit()
    for name, got in (("mirrored", helpers.run_mirrored(lambda strategy: fit())), ("jit", fit(jit_compile=True))):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_solve_every_serializes_and_its_alpha_is_saved(tmp_path):
    model, _ = _fit(GBGModel.from_model(_network(), GROUPING, solve_every=4))
    assert model.get_config()["solve_every"] == 4 and np.isclose(model.gbg_alpha.numpy().sum(), 1.0)
    helpers.assert_config_round_trip(model)
    reloaded = helpers.assert_keras_save_load(model, X[:5], tmp_path)
    assert reloaded.solve_every == 4
    np.testing.assert_array_equal(reloaded.gbg_alpha.numpy(), model.gbg_alpha.numpy())


def test_solve_every_bad_input():
    with pytest.raises(ValueError, match="solve_every"):
        GBGModel.from_model(_network(), GROUPING, solve_every=0)
    with pytest.raises(ValueError, match="solve_every.*mode='representation'"):
        GBGModel.from_model(_network(), GROUPING, mode="representation", solve_every=2)
    with pytest.raises(ValueError, match="solve_every=2, grouping=None"):
        GBGModel.from_model(_network(), None, solve_every=2)


def test_steps_between_solves_all_reduce_nothing_of_parameter_size(monkeypatch):
    # Issue 19.3: the amortized step all-reduced G x parameters zeros between solves. Now the per-group
    # gradients cross the replicas as one flat tensor whose length the step's cond decides (zero between
    # solves): at trace time it has no static length; everything else all-reduced is G numbers.
    from keras_longtail._internal import distribute as _distribute

    recorded = []
    original = _distribute.cross_replica_sum

    def spy(value):
        recorded.append(value.shape)
        return original(value)

    monkeypatch.setattr(_distribute, "cross_replica_sum", spy)
    num_groups = GROUPING.num_groups
    parameters = sum(int(np.prod(w.shape)) for w in _network().trainable_weights)
    helpers.run_mirrored(lambda strategy: _fit(GBGModel.from_model(_network(), GROUPING, solve_every=3)))
    dynamic = [shape for shape in recorded if not shape.is_fully_defined()]
    static = [shape.num_elements() for shape in recorded if shape.is_fully_defined()]
    assert dynamic and all(shape.rank == 1 for shape in dynamic)
    assert static and max(static) <= num_groups < parameters


def test_solver_gap_is_logged_per_epoch_and_not_a_weight():
    model, history = _fit(GBGModel.from_model(_network(), GROUPING), epochs=2)
    gaps = history.history["gbg_solver_gap"]
    assert len(gaps) == 2 and all(0.0 <= gap <= 1e-6 for gap in gaps)
    assert "gbg_solver_gap" not in model.evaluate(X, Y, verbose=0, return_dict=True)
    assert all("gbg_solver_gap" not in v.path for v in model.weights)
    # a solve cut short says so: FISTA with one iteration stays far from the optimum
    model, history = _fit(GBGModel.from_model(_network(), GROUPING, solver="pgd", max_iterations=1))
    assert history.history["gbg_solver_gap"][0] > 1e-3
    model.reset_metrics()
    assert float(model._gbg_gap_holder.value.numpy()) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("solve_every", [1, 2])
def test_alpha_logs_under_mirrored_strategy_equal_one_device(solve_every):
    def logs():
        model = GBGModel.from_model(_network(), GROUPING, solver="pgd", max_iterations=3, solve_every=solve_every)
        history = _fit(model)[1].history
        return (history["gbg_solver_gap"][0], history["gbg_alpha_max"][0], history["gbg_alpha_change"][0],
                *(history[f"gbg_alpha_{g}"][0] for g in range(GROUPING.num_groups)))

    expected = logs()
    assert expected[0] > 1e-6 and 1 / 3 < expected[1] <= 1 and expected[2] > 1e-3  # alpha moves at a re-solve
    assert sum(expected[3:]) == pytest.approx(1.0, abs=1e-5)  # alpha is on the simplex at every step
    assert helpers.run_mirrored(lambda strategy: logs()) == pytest.approx(expected, rel=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_solve_every_in_mixed_precision_stays_close_to_float32(policy):
    # Issue 19.2: the amortized step with 16-bit compute (float16: Keras' LossScaleOptimizer, which scales
    # every group loss alike, so alpha is unchanged). Weights and alpha stay float32, close to float32's.
    def fit():
        model, history = _fit(GBGModel.from_model(_network(), GROUPING, solve_every=2))
        return _weights_of(model) + [model.gbg_alpha.numpy()], history.history

    expected, _ = fit()
    keras.config.set_dtype_policy(policy)
    try:
        got, history = fit()
    finally:
        keras.config.set_dtype_policy("float32")
    assert history["gbg_solver_gap"][0] <= 1e-6
    tolerance = {"mixed_bfloat16": 2e-3, "mixed_float16": 5e-4}[policy]  # measured 3.0e-4 and 1.2e-4
    for want, have in zip(expected, got):
        assert have.dtype == np.float32
        np.testing.assert_allclose(have, want, rtol=0, atol=tolerance)


@pytest.mark.slow
@pytest.mark.parametrize("weighting", ["min_norm", "average"])
def test_steps_the_loss_scaler_skips_are_not_counted_in_the_alpha_logs(weighting):
    # mixed_float16 with a loss scale so large that every step's float16 gradients overflow: the
    # LossScaleOptimizer skips all three steps of the epoch, and the alpha logs count none of them.
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = GBGModel.from_model(_network(), GROUPING, weighting=weighting)
        before = _network_weights(model)
        optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0 ** 60)
        _, history = _fit(model, optimizer=optimizer)
    finally:
        keras.config.set_dtype_policy("float32")
    for want, have in zip(before, _network_weights(model)):
        np.testing.assert_array_equal(have, want)  # nothing applied
    logs = history.history
    assert [logs["gbg_alpha_max"][0], logs["gbg_alpha_change"][0], logs["gbg_alpha_0"][0]] == [0.0, 0.0, 0.0]


@pytest.mark.slow
def test_static_shape_path_for_xla_replicas_equals_one_device(monkeypatch):
    # Replicas compiled by XLA (TPUStrategy; jit_compile=True under a strategy) need static shapes, so there
    # the amortized step all-reduces the per-group gradients (zeros between solves) at every step. The TPU
    # branch is taken here by its float32 solve (solver_dtype), under MirroredStrategy on two CPUs.
    from keras_longtail._internal import distribute as _distribute
    from keras_longtail.gbg import _min_norm

    monkeypatch.setattr(_min_norm, "solver_dtype", lambda: tf.float32)
    recorded = []
    original = _distribute.cross_replica_sum
    monkeypatch.setattr(_distribute, "cross_replica_sum", lambda value: recorded.append(value.shape) or original(value))

    def fit():
        return _weights_of(_fit(GBGModel.from_model(_network(), GROUPING, solve_every=2))[0])

    expected = fit()
    got = helpers.run_mirrored(lambda strategy: fit())
    assert recorded and all(shape.is_fully_defined() for shape in recorded)
    largest = max(int(np.prod(v.shape)) for v in _network().trainable_weights)
    assert max(shape.num_elements() for shape in recorded) == largest  # per-leaf gradients, zeros between solves
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


def test_alpha_max_is_logged_per_epoch_and_equals_the_reference_solve():
    # One full-batch SGD step: the epoch's mean of max_g alpha_g is the one solve's, checked against the
    # step written directly (per-group tapes, cvxopt weights).
    _, alpha = _reference_step(_network(), X, Y, np.ones(len(X), np.float32), GROUPING, "backbone", "loss+", 0.1)
    model, history = _fit(GBGModel.from_model(_network(), GROUPING), optimizer=keras.optimizers.SGD(0.1),
                          batch_size=len(X))
    assert history.history["gbg_alpha_max"] == [pytest.approx(max(alpha), abs=1e-4)]
    _, compiled = _fit(GBGModel.from_model(_network(), GROUPING), optimizer=keras.optimizers.SGD(0.1),
                       batch_size=len(X), jit_compile=True)  # the same inside an XLA-compiled step
    assert compiled.history["gbg_alpha_max"] == [pytest.approx(max(alpha), abs=1e-4)]
    assert 1 / 3 < max(alpha) < 1  # a non-trivial value: neither uniform nor one group
    assert "gbg_alpha_max" not in model.evaluate(X, Y, verbose=0, return_dict=True)
    assert all("gbg_alpha_max" not in v.path for v in model.weights)
    model.reset_metrics()
    assert [float(v.numpy()) for v in model._gbg_alpha_holder.value] == [0.0, 0.0, 0.0]
    # the limiting case of one group: alpha = 1 at every step of every epoch
    _, history = _fit(GBGModel.from_model(_network(), ClassGrouping([0] * NUM_CLASSES)), epochs=2)
    assert history.history["gbg_alpha_max"] == [1.0, 1.0]
