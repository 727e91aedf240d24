import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.gala import GALAAccumulator
from keras_longtail.gala import GALALoss
from tests import helpers

NUM_CLASSES = 6


@functools.lru_cache(maxsize=None)
def _strategy():
    # One strategy per process: a second MirroredStrategy reuses the first one's collective
    # instance keys and fails ("Shape mismatch in the collective instance 100") once their
    # programs differ, even with built-in losses (TF 2.21).
    return helpers.mirrored_strategy()


def _run_mirrored(fn):
    strategy = _strategy()
    with strategy.scope():
        return fn(strategy)


def _reference(batches, num_classes, lambda_1=1.0, lambda_2=1.0, epsilon=1e-3, accumulation="paper"):
    """numpy GALA over successive batches: the per-batch losses (sum_over_batch_size) and final θ, φ."""
    theta, phi, running = np.zeros(num_classes), np.zeros(num_classes), np.zeros((2, num_classes))
    losses = []
    for logits, labels, weights in batches:
        logits = logits.astype(np.float64)
        batch = len(labels)
        one_hot = np.eye(num_classes)[labels]
        adjustment = lambda_1 * np.log(theta + epsilon)[None, :] - lambda_2 * np.log(phi[labels] + epsilon)[:, None]
        if accumulation == "paper":
            adjustment = adjustment * (1 - one_hot)
        adjusted = logits + adjustment
        shifted = adjusted - adjusted.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        losses.append(np.sum(weights * -log_p[np.arange(batch), labels]) / batch)
        gradient = np.abs(np.exp(log_p) - one_hot) * weights[:, None]
        if accumulation == "official":
            gradient = gradient / batch
        positive = (gradient * one_hot).sum(axis=1)
        negative = (gradient * (1 - one_hot)).sum(axis=1)
        delta = np.stack([one_hot.T @ positive, one_hot.T @ negative])
        if accumulation == "official":
            running = running + delta
            delta = running
        theta, phi = theta + delta[0], phi + delta[1]
    return np.array(losses), theta, phi


def _batches(seed=0, count=4, batch=12, absent=(5,)):
    rng = np.random.default_rng(seed)
    present = [k for k in range(NUM_CLASSES) if k not in absent]
    batches = []
    for _ in range(count):
        frequencies = np.linspace(2, 0.5, len(present))  # head classes first
        labels = rng.choice(present, size=batch, p=frequencies / frequencies.sum())
        logits = rng.normal(scale=2.0, size=(batch, NUM_CLASSES)).astype(np.float32)
        weights = rng.uniform(0.5, 2.0, size=batch).astype(np.float32)
        batches.append((logits, labels, weights))
    return batches


@pytest.mark.parametrize("accumulation", ["paper", "official"])
@pytest.mark.parametrize("graph", [False, True])
def test_loss_and_statistics_match_numpy(accumulation, graph):
    batches = _batches()
    loss = GALALoss(NUM_CLASSES, lambda_1=1.2, lambda_2=0.9, epsilon=1e-3, accumulation=accumulation)
    call = tf.function(loss.__call__) if graph else loss
    values = [float(call(labels, logits, sample_weight=weights)) for logits, labels, weights in batches]
    expected, theta, phi = _reference(batches, NUM_CLASSES, 1.2, 0.9, 1e-3, accumulation)
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    np.testing.assert_allclose(loss.theta.numpy(), theta, rtol=1e-5)
    np.testing.assert_allclose(loss.phi.numpy(), phi, rtol=1e-5)
    assert loss.theta.numpy()[5] == 0.0 and loss.phi.numpy()[5] == 0.0  # never seen


def test_phi_equals_theta_for_softmax_cross_entropy():
    loss = GALALoss(NUM_CLASSES)
    for logits, labels, weights in _batches(seed=3):
        loss(labels, logits, sample_weight=weights)
    np.testing.assert_allclose(loss.phi.numpy(), loss.theta.numpy(), rtol=1e-5)


@pytest.mark.parametrize("accumulation, lambda_1, lambda_2", [("paper", 1.0, 1.0), ("paper", 1.3, 1.3),
                                                               ("official", 1.2, 0.9)])
def test_equal_statistics_give_cross_entropy(accumulation, lambda_1, lambda_2):
    logits, labels, _ = _batches(seed=1)[0]
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = float(cross_entropy(labels, logits))
    for value in (0.0, 7.5):
        loss = GALALoss(NUM_CLASSES, lambda_1=lambda_1, lambda_2=lambda_2, accumulation=accumulation)
        loss.theta.assign(np.full(NUM_CLASSES, value, "float32"))
        loss.phi.assign(np.full(NUM_CLASSES, value, "float32"))
        assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("accumulation", ["paper", "official"])
def test_closed_form_statistics_equal_autodiff_gradients(accumulation):
    logits, labels, weights = _batches(seed=2)[0]
    loss = GALALoss(NUM_CLASSES, accumulation=accumulation, reduction="sum")
    loss.theta.assign(np.arange(1, NUM_CLASSES + 1, dtype="float32"))
    loss.phi.assign(np.arange(NUM_CLASSES, 0, -1, dtype="float32"))
    theta_before, phi_before = loss.theta.numpy(), loss.phi.numpy()
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = loss(labels, logits, sample_weight=weights)
    gradient = np.abs(tape.gradient(value, logits).numpy())  # the adjustment is constant in z: ∂/∂z = ∂/∂z'
    if accumulation == "official":
        gradient = gradient / len(labels)  # official: gradient of the batch mean
    one_hot = np.eye(NUM_CLASSES)[labels]
    delta_theta = one_hot.T @ (gradient * one_hot).sum(axis=1)
    delta_phi = one_hot.T @ (gradient * (1 - one_hot)).sum(axis=1)
    np.testing.assert_allclose(loss.theta.numpy() - theta_before, delta_theta, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(loss.phi.numpy() - phi_before, delta_phi, rtol=1e-4, atol=1e-6)


def test_finite_gradients_with_absent_classes():
    loss = GALALoss(NUM_CLASSES, lambda_1=1.2, lambda_2=0.9)
    for logits, labels, _ in _batches(absent=(3, 5)):
        logits = tf.constant(logits)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss(labels, logits)
        gradient = tape.gradient(value, logits).numpy()
        assert np.isfinite(float(value)) and np.all(np.isfinite(gradient))
    assert loss.theta.numpy()[3] == 0.0


def test_reduction_none_and_column_labels():
    logits, labels, _ = _batches()[0]
    per_example = GALALoss(NUM_CLASSES, reduction=None)(labels[:, None], logits)
    assert per_example.shape == (len(labels),)
    expected, _, _ = _reference([(logits, labels, np.ones(len(labels)))], NUM_CLASSES)
    assert float(np.mean(per_example)) == pytest.approx(float(expected[0]), rel=1e-5)


def test_accumulating_flag_and_reset():
    logits, labels, _ = _batches()[0]
    loss = GALALoss(NUM_CLASSES, accumulation="official")
    loss.accumulating.assign(0.0)
    loss(labels, logits)
    assert not loss.theta.numpy().any() and not loss.phi.numpy().any()
    loss.accumulating.assign(1.0)
    loss(labels, logits)
    assert loss.theta.numpy().any()
    loss.reset_state()
    assert not any(variable.numpy().any() for variable in (loss.theta, loss.phi, loss._running))


def test_bad_input():
    with pytest.raises(ValueError, match="num_classes"):
        GALALoss(1)
    with pytest.raises(TypeError, match="num_classes"):
        GALALoss(2.5)
    with pytest.raises(ValueError, match="lambda_1"):
        GALALoss(3, lambda_1=-1.0)
    with pytest.raises(ValueError, match="epsilon"):
        GALALoss(3, epsilon=0.0)
    with pytest.raises(ValueError, match="accumulation"):
        GALALoss(3, accumulation="cumulative")
    loss = GALALoss(3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        loss([0, 3], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        loss([-1, 0], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with pytest.raises(ValueError, match="y_pred"):
        loss([0, 1], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="y_true"):
        loss([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def test_serialization():
    revived = helpers.assert_config_round_trip(
        GALALoss(5, lambda_1=1.2, lambda_2=0.9, epsilon=1e-4, accumulation="official", name="gala"))
    assert revived.accumulation == "official" and revived.lambda_2 == 0.9 and revived.name == "gala"


# Training runs: a linear classifier on 4 features, global batches of 16 and a last one of 2
# (one example per replica: with an empty replica, Keras itself no longer matches one device).
X = np.random.default_rng(5).normal(size=(50, 4)).astype(np.float32)
Y = np.random.default_rng(6).choice(NUM_CLASSES, size=50, p=[0.5, 0.2, 0.15, 0.1, 0.05, 0.0])
INITIAL = [np.random.default_rng(7).normal(scale=0.5, size=(4, NUM_CLASSES)).astype(np.float32),
           np.zeros(NUM_CLASSES, np.float32)]


def _model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(NUM_CLASSES, name="classifier")])
    model.set_weights(INITIAL)
    return model


def _fit(accumulation, jit_compile=False, validation=False):
    model = _model()
    loss = GALALoss(NUM_CLASSES, accumulation=accumulation)
    model.compile(keras.optimizers.SGD(0.5), loss=loss, jit_compile=jit_compile)
    model.fit(X, Y, batch_size=16, epochs=1, shuffle=False, verbose=0,
              validation_data=(X[:16], Y[:16]) if validation else None,
              callbacks=[GALAAccumulator()] if validation else None)
    return model, loss


@pytest.mark.parametrize("accumulation", ["paper", "official"])
@pytest.mark.slow
def test_mirrored_strategy_and_jit_equal_one_device(accumulation):
    model, loss = _fit(accumulation)
    assert loss.theta.numpy().sum() > 0
    expected = [loss.theta.numpy(), loss.phi.numpy()] + model.get_weights()

    def mirrored(strategy):
        model, loss = _fit(accumulation, validation=True)
        assert isinstance(loss.theta.value, tf.distribute.DistributedValues)
        return [loss.theta.numpy(), loss.phi.numpy()] + model.get_weights()

    model_jit, loss_jit = _fit(accumulation, jit_compile=True)
    jit = [loss_jit.theta.numpy(), loss_jit.phi.numpy()] + model_jit.get_weights()
    for name, got in (("mirrored", _run_mirrored(mirrored)), ("jit", jit)):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_first_step_is_cross_entropy_and_predict_returns_plain_logits():
    model, loss = _fit("paper")
    weights = model.get_weights()
    np.testing.assert_allclose(model.predict(X, verbose=0), X @ weights[0] + weights[1], rtol=1e-5, atol=1e-5)
    # Step 1 sees zero statistics: the same update as plain cross-entropy.
    model_ce, model_gala = _model(), _model()
    model_ce.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model_gala.compile(keras.optimizers.SGD(0.5), GALALoss(NUM_CLASSES))
    for model in (model_ce, model_gala):
        model.train_on_batch(X[:16], Y[:16])
    for a, b in zip(model_ce.get_weights(), model_gala.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_loss_created_outside_the_strategy_scope_is_rejected():
    loss = GALALoss(NUM_CLASSES)

    def fit(strategy):
        model = _model()
        model.compile("sgd", loss=loss)
        model.fit(X[:16], Y[:16], batch_size=16, verbose=0)

    with pytest.raises(ValueError, match="strategy.scope"):
        _run_mirrored(fit)


def test_save_and_load(tmp_path):
    model, _ = _fit("official")
    reloaded = helpers.assert_keras_save_load(model, X[:5], tmp_path)
    assert isinstance(reloaded.loss, GALALoss)
    assert reloaded.loss.get_config() == model.loss.get_config()
    reloaded.fit(X[:16], Y[:16], batch_size=16, verbose=0)  # trains with a fresh, zero state
    assert reloaded.loss.theta.numpy().sum() > 0


# ---------------------------------------------------------------------------------------------- robustness (issue 21)
CALLS = {"eager": lambda f: f, "graph": tf.function, "jit": lambda f: tf.function(f, jit_compile=True)}


@pytest.mark.parametrize("accumulation", ["paper", "official"])
@pytest.mark.parametrize("mode", sorted(CALLS))
def test_nan_logits_of_a_masked_example_do_not_touch_the_statistics(accumulation, mode):
    # Item 9: one NaN logit on an example with sample weight 0 made θ, φ NaN for every class, for good.
    batches = _batches(seed=4)
    loss = GALALoss(NUM_CLASSES, accumulation=accumulation)
    call = CALLS[mode](lambda y, z, w: loss(y, z, sample_weight=w))
    poisoned = [(logits.copy(), labels, weights.copy()) for logits, labels, weights in batches]
    poisoned[1][0][3, 2] = np.nan
    poisoned[1][2][3] = 0.0
    for logits, labels, weights in poisoned:
        call(labels, logits, weights)
    # Same as the batch with that example's weight 0 and any finite logits.
    clean = [(np.nan_to_num(logits), labels, weights) for logits, labels, weights in poisoned]
    _, theta, phi = _reference(clean, NUM_CLASSES, accumulation=accumulation)
    np.testing.assert_allclose(loss.theta.numpy(), theta, rtol=1e-5)
    np.testing.assert_allclose(loss.phi.numpy(), phi, rtol=1e-5)


@pytest.mark.parametrize("accumulation", ["paper", "official"])
@pytest.mark.parametrize("mode", sorted(CALLS))
def test_non_finite_update_is_skipped(accumulation, mode):
    # Item 9: a weighted example with NaN (or infinite) logits: its batch's update is skipped, never stored.
    batches = _batches(seed=5)
    loss = GALALoss(NUM_CLASSES, accumulation=accumulation)
    call = CALLS[mode](lambda y, z, w: loss(y, z, sample_weight=w))
    poisoned = [(logits.copy(), labels, weights) for logits, labels, weights in batches]
    poisoned[1][0][0, 1] = np.nan
    poisoned[2][0][5, 0] = np.inf
    values = [float(call(labels, logits, weights)) for logits, labels, weights in poisoned]
    assert np.isnan(values[1]) and not np.isfinite(values[2])  # the loss shows it
    expected, theta, phi = _reference([batches[0], batches[3]], NUM_CLASSES, accumulation=accumulation)
    assert np.isfinite(values[3]) and values[3] == pytest.approx(expected[1], rel=1e-5)
    np.testing.assert_allclose(loss.theta.numpy(), theta, rtol=1e-5)
    np.testing.assert_allclose(loss.phi.numpy(), phi, rtol=1e-5)


def test_out_of_range_labels_under_jit_give_nan_loss_and_no_statistics():
    # Item 10: XLA drops the range assertion; before, the loss was finite and silently wrong.
    logits, labels, weights = _batches(seed=6)[0]
    bad = labels.copy()
    bad[[2, 7]] = [NUM_CLASSES, -1]
    loss = GALALoss(NUM_CLASSES, reduction=None)
    values = tf.function(lambda y, z, w: loss(y, z, sample_weight=w), jit_compile=True)(bad, logits, weights).numpy()
    assert np.isnan(values[[2, 7]]).all()
    keep = np.setdiff1d(np.arange(len(labels)), [2, 7])
    masked = weights.copy()
    masked[[2, 7]] = 0.0
    _, theta, phi = _reference([(logits, labels, masked)], NUM_CLASSES)
    np.testing.assert_allclose(values[keep], (-np.log(_softmax(logits)[np.arange(len(labels)), labels]) * weights)[keep],
                               rtol=1e-5)
    np.testing.assert_allclose(loss.theta.numpy(), theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(loss.phi.numpy(), phi, rtol=1e-5, atol=1e-7)


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_out_of_range_labels_in_fit():
    # Item 10, in `fit`: eager/graph raise; under jit the logged loss is NaN and the bad example neither moves the
    # weights nor the statistics (the same run as with that example weighted 0).
    bad_y = Y[:16].copy()
    bad_y[3] = NUM_CLASSES
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        _model_and_loss()[0].fit(X[:16], bad_y, batch_size=16, verbose=0)
    model, loss = _model_and_loss(jit_compile=True)
    history = model.fit(X[:16], bad_y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert np.isnan(history.history["loss"]).all()
    reference, reference_loss = _model_and_loss(jit_compile=True)
    good_y, weights = bad_y.copy(), np.ones(16, "float32")
    good_y[3], weights[3] = 0, 0.0
    reference.fit(X[:16], good_y, sample_weight=weights, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for want, have in zip(reference.get_weights() + [reference_loss.theta.numpy()],
                          model.get_weights() + [loss.theta.numpy()]):
        assert np.all(np.isfinite(have))
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-7)


def _model_and_loss(jit_compile=False):
    model, loss = _model(), GALALoss(NUM_CLASSES)
    model.compile(keras.optimizers.SGD(0.5), loss=loss, jit_compile=jit_compile)
    return model, loss


def test_batch_size_mismatch_raises_our_error():
    # Item 12: a raw TensorFlow error before.
    logits = np.zeros((3, NUM_CLASSES), "float32")
    with pytest.raises(ValueError, match=r"Expected `y_true` and `y_pred` to hold the same number of examples.*"
                                         rf"Received: y_true with 2 labels, y_pred with shape \(3, {NUM_CLASSES}\)"):
        GALALoss(NUM_CLASSES)([0, 1], logits)
    loss = GALALoss(NUM_CLASSES)
    dynamic = tf.function(lambda y, z: loss(y, z), input_signature=[
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, NUM_CLASSES], tf.float32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of examples"):
        dynamic(tf.constant([0, 1]), tf.constant(logits))
    assert not loss.theta.numpy().any()
