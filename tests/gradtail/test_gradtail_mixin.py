"""GradTail's train step against a numpy reference of Algorithm 1, both gradient paths."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.gradtail import GradTailMixin
from keras_longtail.gradtail import GradTailModel
from keras_longtail.gradtail import GradTailSigmoid

NUM_CLASSES = 3
RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 4)).astype(np.float32)
Y = RNG.integers(0, NUM_CLASSES, size=48)
SW = RNG.uniform(0.5, 2.0, size=48).astype(np.float32)
INITIAL = [RNG.normal(scale=0.7, size=(4, 3)).astype(np.float32), RNG.normal(scale=0.1, size=3).astype(np.float32),
           RNG.normal(scale=0.7, size=(3, NUM_CLASSES)).astype(np.float32),
           RNG.normal(scale=0.1, size=NUM_CLASSES).astype(np.float32)]
PIVOT, DECAY, MAX_WEIGHT, SHARPNESS, LR = 0.3, 0.5, 4.0, 2.0, 0.2


def _network():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="tanh", name="hidden")(inputs)
    logits = keras.layers.Dense(NUM_CLASSES, name="classifier")(hidden)
    return inputs, logits


def _set(model, params=INITIAL):
    for variable, value in zip(model.trainable_weights, params):
        variable.assign(value)


def _params(model):
    return [v.numpy() for v in model.trainable_weights]


def _model(gradient_path="auto", **kwargs):
    inputs, logits = _network()
    model = GradTailModel(inputs, logits, pivot=PIVOT, decay=DECAY, gradient_path=gradient_path,
                          activation=GradTailSigmoid(MAX_WEIGHT, SHARPNESS), **kwargs)
    _set(model)
    model.compile(keras.optimizers.SGD(LR), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _per_example_gradients(params, x, y):
    """Per-example gradients of softmax cross-entropy for the tanh MLP, flattened (N, P)."""
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1 + b1)
    z = h @ w2 + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    losses = -np.log(p[np.arange(len(y)), y])
    d2 = p - np.eye(NUM_CLASSES)[y]
    d1 = (d2 @ w2.T) * (1 - h ** 2)
    grads = [x[:, :, None] * d1[:, None, :], d1, h[:, :, None] * d2[:, None, :], d2]
    return losses, np.concatenate([g.reshape(len(y), -1) for g in grads], axis=1)


def _reference(batches, params):
    """numpy Algorithm 1 with the documented warm-up; SGD on Σ q s L / N. Returns per-step records."""
    params = [p.astype(np.float64) for p in params]
    shapes = [p.shape for p in params]
    mean_gradient, sigma, step = np.zeros(sum(p.size for p in params)), 0.0, 0
    records = []
    for x, y, s in batches:
        losses, g = _per_example_gradients(params, x.astype(np.float64), y)
        norms = np.linalg.norm(g, axis=1) * np.linalg.norm(mean_gradient)
        theta = np.where(norms > 0, g @ mean_gradient / np.where(norms > 0, norms, 1), 0.0)
        batch_mean = (s[:, None] * g).sum(0) / s.sum()
        if step == 0:
            mean_gradient = batch_mean
            q = np.ones(len(y))
        else:
            sigma_x = np.sum(s * np.abs(theta)) / s.sum()
            sigma = sigma_x if step == 1 else DECAY * sigma + (1 - DECAY) * sigma_x
            mean_gradient = DECAY * mean_gradient + (1 - DECAY) * batch_mean
            distance = np.abs(theta / sigma - PIVOT)
            q = 1 + 2 * (MAX_WEIGHT - 1) / (1 + np.exp(SHARPNESS * distance))
        step += 1
        loss = np.sum(q * s * losses) / len(y)
        update = (q * s) @ g / len(y)
        offset = 0
        for i, shape in enumerate(shapes):
            size = int(np.prod(shape))
            params[i] = params[i] - LR * update[offset:offset + size].reshape(shape)
            offset += size
        records.append({"params": [p.copy() for p in params], "mean_gradient": mean_gradient.copy(),
                        "sigma": sigma, "theta": theta, "q": q, "loss": loss})
    return records


def _batches(count=5, size=12):
    return [(X[i * size:(i + 1) * size], Y[i * size:(i + 1) * size], SW[i * size:(i + 1) * size])
            for i in range(count - 1)] + [(X[:size], Y[:size], SW[:size])]


@pytest.mark.parametrize("gradient_path", ["dense", "analytic", "jacobian"])
def test_train_step_matches_numpy_algorithm_1(gradient_path):
    model = _model(gradient_path)
    assert model.gradtail_resolved_path == gradient_path
    assert [v.path for v in model.gradtail_variables] == ["hidden/kernel", "hidden/bias",
                                                         "classifier/kernel", "classifier/bias"]
    records = _reference(_batches(), INITIAL)
    for (x, y, s), record in zip(_batches(), records):
        # θ and q the step is about to use (scores read the state without changing it)
        model.reset_metrics()
        logs = model.train_on_batch(x, y, sample_weight=s, return_dict=True)
        for got, want in zip(_params(model), record["params"]):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
        mean_gradient = np.concatenate([v.numpy().ravel() for v in model.gradtail_mean_gradient])
        np.testing.assert_allclose(mean_gradient, record["mean_gradient"], rtol=2e-4, atol=1e-6)
        assert float(model.gradtail_sigma.numpy()) == pytest.approx(record["sigma"], rel=2e-4, abs=1e-7)
        assert logs["loss"] == pytest.approx(record["loss"], rel=2e-4)
        assert logs["gradtail_mean_weight"] == pytest.approx(record["q"].mean(), rel=2e-4)
        assert logs["gradtail_upweighted"] == pytest.approx(np.mean(record["q"] > (1 + MAX_WEIGHT) / 2))
    assert int(model.gradtail_step.numpy()) == 5
    assert records[-1]["q"].max() > 1.5 and records[-1]["q"].min() < 1.2  # the reference really reweights


def test_paths_agree_on_scores_and_weights():
    dense, jacobian = _model("dense"), _model("jacobian")
    for model in (dense, jacobian):
        for x, y, s in _batches(count=3):
            model.train_on_batch(x, y, sample_weight=s)
    theta_dense, q_dense = dense.gradtail_batch_scores(X, Y)
    theta_jacobian, q_jacobian = jacobian.gradtail_batch_scores(X, Y)
    np.testing.assert_allclose(theta_dense.numpy(), theta_jacobian.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(q_dense.numpy(), q_jacobian.numpy(), rtol=1e-4, atol=1e-6)
    assert np.all(np.abs(theta_dense.numpy()) <= 1 + 1e-6)


def test_jacobian_path_on_a_convolution_equals_per_example_tapes():
    inputs = keras.Input((6, 6, 2))
    features = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    logits = keras.layers.Dense(NUM_CLASSES, name="classifier")(pooled)
    model = GradTailModel(inputs, logits, gradient_layers=["conv", "classifier"], decay=0.9,
                          gradient_path="jacobian")
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = np.random.default_rng(1).normal(size=(8, 6, 6, 2)).astype(np.float32)
    labels = np.arange(8) % NUM_CLASSES
    model.train_on_batch(images, labels)
    theta, _ = model.gradtail_batch_scores(images, labels)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    mean_gradient = np.concatenate([v.numpy().ravel() for v in model.gradtail_mean_gradient])
    expected = []
    for i in range(8):
        with tf.GradientTape() as tape:
            value = loss(labels[i:i + 1], model(images[i:i + 1]))
        g = np.concatenate([t.numpy().ravel() for t in tape.gradient(value, model.gradtail_variables)])
        expected.append(g @ mean_gradient / (np.linalg.norm(g) * np.linalg.norm(mean_gradient)))
    np.testing.assert_allclose(theta.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_first_step_is_plain_training_and_max_weight_one_is_plain_training():
    plain = keras.Model(*_network())
    plain.set_weights(INITIAL)
    plain.compile(keras.optimizers.SGD(LR), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, logits = _network()
    unit = GradTailModel(inputs, logits, activation=GradTailSigmoid(max_weight=1.0))
    _set(unit)
    unit.compile(keras.optimizers.SGD(LR), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    first = _model()
    first.train_on_batch(X[:12], Y[:12])
    for x, y, _ in _batches(count=3):
        plain.train_on_batch(x, y)
        unit.train_on_batch(x, y)
    for a, b in zip(plain.get_weights(), _params(unit)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    plain_one = keras.Model(*_network())
    plain_one.set_weights(INITIAL)
    plain_one.compile(keras.optimizers.SGD(LR), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    plain_one.train_on_batch(X[:12], Y[:12])
    for a, b in zip(plain_one.get_weights(), _params(first)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert float(first.gradtail_sigma.numpy()) == 0.0 and np.any(first.gradtail_mean_gradient[0].numpy())


class SubclassedMLP(GradTailMixin, keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(3, activation="tanh", name="hidden")
        self.classifier = keras.layers.Dense(NUM_CLASSES, name="classifier")

    def call(self, x):
        return self.classifier(self.hidden(x))


def test_subclassed_mixin_uses_the_jacobian_path_and_matches_functional():
    model = SubclassedMLP(pivot=PIVOT, decay=DECAY, activation=GradTailSigmoid(MAX_WEIGHT, SHARPNESS))
    model(X[:2])
    _set(model)
    model.compile(keras.optimizers.SGD(LR), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    functional = _model("dense")
    for x, y, s in _batches(count=3):
        model.train_on_batch(x, y, sample_weight=s)
        functional.train_on_batch(x, y, sample_weight=s)
    assert model.gradtail_resolved_path == "jacobian"
    for a, b in zip(_params(model), _params(functional)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_regularization_losses_are_added():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="tanh", name="hidden",
                                kernel_regularizer=keras.regularizers.L2(0.1))(inputs)
    logits = keras.layers.Dense(NUM_CLASSES, name="classifier")(hidden)
    model = GradTailModel(inputs, logits)
    _set(model)
    model.compile(keras.optimizers.SGD(LR), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    logs = model.train_on_batch(X[:12], Y[:12], return_dict=True)
    losses, _ = _per_example_gradients(INITIAL, X[:12].astype(np.float64), Y[:12])
    assert logs["loss"] == pytest.approx(losses.mean() + 0.1 * np.sum(INITIAL[0] ** 2), rel=1e-5)


# ---------------------------------------------------------------- the analytic path on convolutions
IMAGES = RNG.normal(loc=0.5, size=(40, 7, 7, 2)).astype(np.float32)  # not centred: BN coupling matters
LABELS = RNG.integers(0, NUM_CLASSES, size=40)
IMAGE_SW = RNG.uniform(0.5, 2.0, size=40).astype(np.float32)


def _conv_network(variant):
    """Small ResNet-like nets; the GradTail default selection is the last conv and the classifier."""
    inputs = keras.Input((7, 7, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    shortcut = x = keras.layers.ReLU()(x)
    if variant == "conv_bn":  # the ResNet pattern: conv (with bias here) → BN → add → ReLU
        x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
        x = keras.layers.BatchNormalization(name="bn")(x)
        x = keras.layers.ReLU()(keras.layers.Add()([x, shortcut]))
    elif variant == "strided_plain_bn":  # stride 2, VALID, no bias, BN without scale and centre
        x = keras.layers.Conv2D(3, 3, strides=2, use_bias=False, name="conv")(x)
        x = keras.layers.BatchNormalization(scale=False, center=False, name="bn")(x)
        x = keras.layers.Activation("tanh")(x)
    elif variant == "dilated_no_bn":  # no batch norm after the selected conv: independent examples
        x = keras.layers.Conv2D(3, 2, dilation_rate=2, padding="same", name="conv")(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(NUM_CLASSES, name="classifier")(x)
    return inputs, logits


def _conv_model(variant, gradient_path, **kwargs):
    keras.utils.set_random_seed(4)
    model = GradTailModel(*_conv_network(variant), pivot=0.1, decay=0.5, gradient_path=gradient_path,
                          activation=GradTailSigmoid(MAX_WEIGHT, SHARPNESS), **kwargs)
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _state(model):
    return ([v.numpy() for v in model.gradtail_mean_gradient] + [model.gradtail_sigma.numpy()]
            + [v.numpy() for v in model.weights])


@pytest.mark.parametrize("variant", ["conv_bn", "strided_plain_bn", "dilated_no_bn"])
@pytest.mark.slow
def test_analytic_path_equals_jacobian_path_over_steps(variant):
    analytic, jacobian = _conv_model(variant, "auto"), _conv_model(variant, "jacobian")
    assert analytic.gradtail_resolved_path == "analytic"
    assert [v.path.split("/")[0] for v in analytic.gradtail_variables][-2:] == ["classifier", "classifier"]
    jacobian.set_weights(analytic.get_weights())
    for step in range(4):
        x, y, s = (IMAGES[step * 10:(step + 1) * 10], LABELS[step * 10:(step + 1) * 10],
                   IMAGE_SW[step * 10:(step + 1) * 10])
        logs = [m.train_on_batch(x, y, sample_weight=s, return_dict=True) for m in (analytic, jacobian)]
        for key in ("loss", "gradtail_mean_weight", "gradtail_sigma"):
            assert logs[0][key] == pytest.approx(logs[1][key], rel=1e-4), key
        for got, want in zip(_state(analytic), _state(jacobian)):
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)
    # θ and q per example, with batch statistics (training) and with moving statistics (inference)
    for training in (True, False):
        (theta, q), (theta_want, q_want) = [m.gradtail_batch_scores(IMAGES[:20], LABELS[:20], training=training)
                                            for m in (analytic, jacobian)]
        np.testing.assert_allclose(theta.numpy(), theta_want.numpy(), rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(q.numpy(), q_want.numpy(), rtol=1e-4, atol=2e-5)
        assert np.ptp(q_want.numpy()) > 0.5  # the weights really differ between examples


def test_analytic_gradients_need_the_batch_norm_correction():
    """The tolerances above discriminate: dropping the BN coupling terms moves ∇_i by far more."""
    from keras_longtail.gradtail import _kernels

    model = _conv_model("conv_bn", "analytic")
    model.train_on_batch(IMAGES[:10], LABELS[:10])
    entry = model._gradtail.plan.layers[0]
    assert entry.layer.name == "conv" and entry.bn.name == "bn"
    with tf.GradientTape(persistent=True) as tape:
        outputs = model._gradtail.plan.aux(IMAGES[10:20], training=True)
        values = model._gradtail_loss_values(LABELS[10:20], outputs[0])
    at_bn, at_conv = tape.gradient(values, [outputs[entry.bn_output_index], outputs[entry.output_index]])
    conv_input, conv_output = outputs[entry.input_index], outputs[entry.output_index]
    exact = _kernels.conv_per_example_gradients(entry, conv_input, conv_output, at_bn, coupled=True)
    naive = _kernels.conv_per_example_gradients(entry, conv_input, conv_output, at_conv, coupled=False)
    kernel, bias = tape.jacobian(values, [entry.layer.kernel, entry.layer.bias])
    want = np.concatenate([kernel.numpy().reshape(10, -1, 4), bias.numpy()[:, None, :]], axis=1)
    np.testing.assert_allclose(exact.numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert np.linalg.norm(naive.numpy() - want) > 0.5 * np.linalg.norm(want)
    # with a batch norm right after it, the conv bias has an exactly zero per-example gradient
    assert np.abs(want[:, -1]).max() < 1e-5 * np.abs(want).max()


def test_subclassed_mixin_config_round_trip():
    """The train-step contract gives a subclassed GradTail model a get_config with GradTail's arguments."""
    model = SubclassedMLP(gradient_layers=["classifier"], pivot=PIVOT, decay=DECAY,
                          activation=GradTailSigmoid(MAX_WEIGHT, SHARPNESS), gradient_path="jacobian")
    model(X[:2])
    config = model.get_config()
    assert config["gradient_layers"] == ["classifier"] and config["pivot"] == PIVOT and config["decay"] == DECAY
    revived = SubclassedMLP.from_config(json.loads(json.dumps(config)))
    revived(X[:2])
    assert (revived.pivot, revived.decay, revived.gradient_path) == (PIVOT, DECAY, "jacobian")
    assert revived.activation.get_config() == model.activation.get_config()
    assert [v.path for v in revived.gradtail_variables] == [v.path for v in model.gradtail_variables]
