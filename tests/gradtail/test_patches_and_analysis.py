"""Dense-regression pseudo-examples (patches, masks), the activation, scores and the weight logger."""

import keras
import numpy as np
import pytest

from keras_longtail.gradtail import GradTailModel
from keras_longtail.gradtail import GradTailSigmoid
from keras_longtail.gradtail import GradTailWeightLogger
from keras_longtail.gradtail import RandomPatches
from keras_longtail.gradtail import gradtail_scores
from tests import helpers

RNG = np.random.default_rng(11)
IMAGES = RNG.normal(size=(8, 10, 12, 2)).astype(np.float32)
DEPTH = (IMAGES[..., :1] * 2.0 + 1.0).astype(np.float32)
MASK = (RNG.uniform(size=(8, 10, 12)) > 0.3).astype(np.float32)  # pixels with ground truth


def _dense_model(patches):
    inputs = keras.Input((10, 12, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="up1")(inputs)
    depth = keras.layers.Conv2D(1, 1, name="up2")(x)
    model = GradTailModel(inputs, depth, patches=patches, gradient_variables=["up1/bias", "up2/bias"],
                          activation=GradTailSigmoid(max_weight=15.0), decay=0.9)
    model.compile(keras.optimizers.SGD(0.05), keras.losses.MeanAbsoluteError(reduction=None))
    return model


def test_patch_pseudo_examples_match_numpy():
    patches = RandomPatches(num_patches=3, min_size=3, max_size=6, seed=4)
    model = _dense_model(patches)
    model.gradtail_step.assign(5.0)
    values, weights = model._gradtail_pseudo_examples(DEPTH, model(IMAGES), MASK)
    masks = patches.masks(10, 12, step=5).numpy()
    per_pixel = np.abs(model(IMAGES).numpy()[..., 0] - DEPTH[..., 0])
    numerator = np.einsum("bhw,khw->bk", MASK * per_pixel, masks)
    denominator = np.einsum("bhw,khw->bk", MASK, masks)
    expected_values = np.where(denominator > 0, numerator / np.maximum(denominator, 1e-9), 0.0)
    expected_weights = denominator / masks.sum(axis=(1, 2))
    np.testing.assert_allclose(values.numpy(), expected_values.ravel(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights.numpy(), expected_weights.ravel(), rtol=1e-5, atol=1e-6)


def test_random_patches_cover_and_are_deterministic():
    patches = RandomPatches(num_patches=6, min_size=20, max_size=100, seed=1)
    masks = patches.masks(96, 240, step=3).numpy()
    assert masks.shape == (7, 96, 240)
    sides = [(m.any(axis=1).sum(), m.any(axis=0).sum()) for m in masks[:6]]
    assert all(20 <= h <= 96 and 20 <= w <= 100 and (h == w or h == 96) for h, w in sides)
    np.testing.assert_array_equal(masks[:6].max(axis=0) + masks[6], np.ones((96, 240)))
    np.testing.assert_array_equal(masks, patches.masks(96, 240, step=3).numpy())
    assert not np.array_equal(masks, patches.masks(96, 240, step=4).numpy())
    helpers.assert_config_round_trip(patches)
    with pytest.raises(ValueError, match="max_size"):
        RandomPatches(min_size=20, max_size=10)
    with pytest.raises(ValueError, match="num_patches"):
        RandomPatches(num_patches=0)


@pytest.mark.slow
def test_dense_regression_trains_and_ignores_masked_pixels():
    patches = RandomPatches(num_patches=3, min_size=3, max_size=6, seed=4)
    noisy = DEPTH + 50.0 * (1.0 - MASK[..., None]) * RNG.normal(size=DEPTH.shape).astype(np.float32)
    results = []
    for target in (DEPTH, noisy):
        model = _dense_model(patches)
        for variable, value in zip(model.trainable_weights, _FIXED):
            variable.assign(value)
        model.fit(IMAGES, target, sample_weight=MASK, batch_size=4, epochs=2, shuffle=False, verbose=0)
        results.append([w.numpy() for w in model.trainable_weights] + [model.gradtail_sigma.numpy()])
        theta = gradtail_scores(model, (IMAGES, target, MASK), batch_size=4)
        assert theta.shape == (8, 4) and np.all(np.abs(theta) <= 1 + 1e-5)
    assert float(results[0][-1]) > 0
    for a, b in zip(*results):  # pixels without ground truth change nothing
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


_FIXED = [w.numpy() for w in _dense_model(None).trainable_weights]


def test_sigmoid_activation_formula_and_limits():
    f = GradTailSigmoid(max_weight=15.0, sharpness=2.5)
    x = np.linspace(0, 20, 201)
    got = np.asarray(f(x))
    np.testing.assert_allclose(got, 1 + 2 * 14 / (1 + np.exp(2.5 * x)), rtol=1e-6)
    assert got[0] == pytest.approx(15.0) and got[-1] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(got) <= 0) and np.all(np.diff(got[x < 6]) < 0) and np.all(got >= 1.0)
    np.testing.assert_allclose(np.asarray(GradTailSigmoid(max_weight=1.0)(x)), 1.0)
    helpers.assert_config_round_trip(f)
    with pytest.raises(ValueError, match="max_weight"):
        GradTailSigmoid(max_weight=0.99)
    with pytest.raises(ValueError, match="sharpness"):
        GradTailSigmoid(sharpness=0.0)


@pytest.mark.slow
def test_scores_and_weight_logger():
    inputs = keras.Input((2,))
    logits = keras.layers.Dense(2, name="classifier")(keras.layers.Dense(5, activation="relu", name="h")(inputs))
    model = GradTailModel(inputs, logits, activation=GradTailSigmoid(max_weight=4.0))
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = RNG.normal(size=(64, 2)).astype(np.float32)
    y = (x.sum(axis=1) > 1).astype(np.int32)
    logger = GradTailWeightLogger()
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[logger])
    assert [entry["epoch"] for entry in logger.history] == [0, 1]
    assert sum(logger.history[0]["counts"]) == 64  # every example once per epoch, in [1, 4]
    assert logger.history[0]["bin_edges"][0] == 1.0 and logger.history[0]["bin_edges"][-1] == 4.0
    # Epoch 1's first step is unweighted: all 16 in the lowest bin; later epochs use the weights.
    assert logger.history[0]["counts"][0] >= 16
    theta, weights = gradtail_scores(model, (x, y), batch_size=32, return_weights=True)
    assert theta.shape == (64,) and np.all(np.abs(theta) <= 1 + 1e-6)
    sigma = float(model.gradtail_sigma.numpy())
    np.testing.assert_allclose(weights, np.asarray(model.activation(np.abs(theta / sigma))), rtol=1e-5)
    step = float(model.gradtail_step.numpy())
    gradtail_scores(model, (x, y))
    assert float(model.gradtail_step.numpy()) == step  # scoring never updates the state
    with pytest.raises(ValueError, match="GradTail model"):
        plain = keras.Model(inputs, logits)
        plain.compile("sgd", "mse")
        plain.fit(x, y, epochs=1, verbose=0, callbacks=[GradTailWeightLogger()])
