"""GradTail's "bias" gradient path (per-channel biases, with and without patches) against per-pseudo-example tapes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.gradtail import GradTailModel
from keras_longtail.gradtail import GradTailSigmoid
from keras_longtail.gradtail import RandomPatches
from tests import helpers

RNG = np.random.default_rng(21)
IMAGES = RNG.normal(size=(6, 6, 8, 2)).astype(np.float32)
DEPTH = (np.abs(IMAGES[..., :1]) * 5.0 + 1.0).astype(np.float32)
DEPTH = np.concatenate([DEPTH, DEPTH], axis=1).repeat(2, axis=2)  # the decoder upsamples to 12 x 16
MASK = (RNG.uniform(size=DEPTH.shape) > 0.3).astype(np.float32)
BIASES = ["up1/bias", "mix/bias", "up2/bias"]
PATCHES = RandomPatches(num_patches=3, min_size=3, max_size=7, seed=2)


def _network():
    """A tiny decoder: ReLU conv, a stride-2 ReLU transposed conv (the depth_unet layer type), a linear conv."""
    inputs = keras.Input((6, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="up1")(inputs)
    x = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu", name="mix")(x)
    depth = keras.layers.Conv2D(1, 3, padding="same", name="up2")(x)
    return inputs, depth


# Fixed initial weights (seeded Glorot kernels, small biases): unseeded ones made the check below that the
# pseudo-examples differ depend on the global RNG state, i.e. on which tests ran before.
INITIAL = [keras.initializers.GlorotUniform(seed=position)(w.shape).numpy() if len(w.shape) > 1
           else np.random.default_rng(position).normal(scale=0.1, size=w.shape).astype(np.float32)
           for position, w in enumerate(keras.Model(*_network()).trainable_weights)]


def _model(gradient_path="auto", patches=PATCHES, variables=BIASES, jit_compile=False):
    model = GradTailModel(*_network(), patches=patches, gradient_variables=variables, gradient_path=gradient_path,
                          pivot=-0.5, decay=0.8, activation=GradTailSigmoid(max_weight=15.0, sharpness=2.0))
    for variable, value in zip(model.trainable_weights, INITIAL):
        variable.assign(value)
    model.compile(keras.optimizers.SGD(0.02, momentum=0.5), keras.losses.MeanAbsoluteError(reduction=None),
                  jit_compile=jit_compile)
    return model


def _set_state(model, step=4.0):
    rng = np.random.default_rng(5)
    for variable in model.gradtail_mean_gradient:
        variable.assign(rng.normal(size=variable.shape).astype(np.float32))
    model.gradtail_sigma.assign(0.4)
    model.gradtail_step.assign(step)


def _reference_theta(model, patches, step):
    """cos(∇ L_bk, w̃) from one tape per pseudo-example (patch mean of the masked per-pixel L1)."""
    prediction_fn = keras.Model(model.input, model.output)
    mean_gradient = np.concatenate([v.numpy().ravel() for v in model.gradtail_mean_gradient])
    masks = np.ones((1, 12, 16), np.float32) if patches is None else patches.masks(12, 16, step).numpy()
    theta = []
    for b in range(len(IMAGES)):
        for mask in masks:
            with tf.GradientTape() as tape:
                error = tf.abs(prediction_fn(IMAGES[b:b + 1])[0, ..., 0] - DEPTH[b, ..., 0])
                weight = mask * MASK[b, ..., 0]
                loss = tf.reduce_sum(weight * error) / max(weight.sum(), 1e-12)
            g = np.concatenate([t.numpy().ravel() for t in tape.gradient(loss, model.gradtail_variables)])
            norm = np.linalg.norm(g) * np.linalg.norm(mean_gradient)
            theta.append(g @ mean_gradient / norm if norm > 0 else 0.0)
    return np.array(theta)


@pytest.mark.parametrize("patches", [PATCHES, None], ids=["patches", "per-example"])
def test_bias_path_equals_one_tape_per_pseudo_example(patches):
    model = _model(patches=patches)
    assert model.gradtail_resolved_path == "bias"
    _set_state(model)
    theta, weights = model.gradtail_batch_scores(IMAGES, DEPTH, MASK)
    # Scores use the next training step's patches (the step counter is 4, so the draw of step 4).
    expected = _reference_theta(model, patches, step=4)
    assert theta.shape == (len(IMAGES) * (1 if patches is None else PATCHES.num_masks),)
    assert np.ptp(expected) > 0.02  # pseudo-examples really differ
    np.testing.assert_allclose(theta.numpy(), expected, rtol=1e-4, atol=1e-5)
    distance = np.abs(expected / 0.4 + 0.5)
    np.testing.assert_allclose(weights.numpy(), 1 + 2 * 14 / (1 + np.exp(2.0 * distance)), rtol=1e-3)


@pytest.mark.slow
def test_bias_path_trains_as_the_jacobian_path():
    results = []
    for path in ("bias", "jacobian"):
        model = _model(path)
        history = model.fit(IMAGES, DEPTH, sample_weight=MASK, batch_size=3, epochs=2, shuffle=False, verbose=0)
        results.append(([v.numpy() for v in model.trainable_weights + model.gradtail_mean_gradient]
                        + [model.gradtail_sigma.numpy()], history.history))
    (bias, bias_logs), (jacobian, jacobian_logs) = results
    assert bias_logs["gradtail_mean_weight"][-1] > 1.0
    for have, want in zip(bias, jacobian):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    for key in ("loss", "gradtail_mean_weight", "gradtail_sigma"):
        np.testing.assert_allclose(bias_logs[key], jacobian_logs[key], rtol=1e-5)


def _fit(path="bias", jit_compile=False):
    model = _model(path, jit_compile=jit_compile)
    model.fit(IMAGES, DEPTH, sample_weight=MASK, batch_size=6, epochs=3, shuffle=False, verbose=0)
    return [v.numpy() for v in model.trainable_weights + model.gradtail_mean_gradient] + [model.gradtail_sigma.numpy()]


@pytest.mark.slow
def test_bias_path_under_mirrored_strategy_equals_one_device():
    for have, want in zip(helpers.run_mirrored(lambda strategy: _fit()), _fit()):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_bias_path_compiles_with_xla_and_equals_the_jacobian_path_there():
    # XLA's numerics for this model differ from the graph's by ~4e-4 after one plain (q = 1) step on either path,
    # so the reference under jit_compile is the exact jacobian path under jit_compile.
    for have, want in zip(_fit(jit_compile=True), _fit("jacobian", jit_compile=True)):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


def test_auto_falls_back_and_explicit_bias_path_names_the_problem():
    assert _model(variables=BIASES + ["up1/kernel"]).gradtail_resolved_path == "jacobian"
    with pytest.raises(ValueError, match="gradient_path='bias'.*'up1/kernel' is not the bias"):
        _model("bias", variables=["up1/kernel"])
    inputs = keras.Input((6, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="up1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    tanh = keras.layers.Conv2D(1, 3, padding="same", activation="tanh", name="up2")(x)
    for variables, problem in ((["up1/bias"], "batch normalization"), (["up2/bias"], "activation 'tanh'")):
        model = GradTailModel(inputs, tanh, patches=PATCHES, gradient_variables=variables)
        assert model.gradtail_resolved_path == "jacobian"
        with pytest.raises(ValueError, match=problem):
            GradTailModel(inputs, tanh, patches=PATCHES, gradient_variables=variables, gradient_path="bias")
