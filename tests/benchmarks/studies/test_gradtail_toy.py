import math

import keras
import numpy as np
import pytest

from benchmarks.studies import gradtail_toy


def _log_density(points, mean, variance):
    return -np.sum((points - mean) ** 2, axis=1) / (2 * variance) - math.log(2 * math.pi * variance)


def test_bayes_boundary_is_where_the_two_densities_are_equal():
    angles = np.linspace(0, 2 * np.pi, 17)
    circle = gradtail_toy.BAYES_CENTER + gradtail_toy.BAYES_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1)
    diagonal = np.array([[gradtail_toy.BAYES_DIAGONAL] * 2])
    for points in (circle, diagonal):
        difference = _log_density(points, gradtail_toy.RARE_MEAN, 0.5) - _log_density(points, 0.0, 1.0)
        np.testing.assert_allclose(difference, 0.0, atol=1e-9)
        np.testing.assert_allclose(gradtail_toy.bayes_signed_distance(points), 0.0, atol=1e-9)
    # > 0 on the rare side: the rare mean is inside, the common mean outside.
    signs = np.sign(gradtail_toy.bayes_signed_distance(np.array([gradtail_toy.RARE_MEAN, [0.0, 0.0]])))
    assert signs.tolist() == [1.0, -1.0]


def _linear_model(c):
    """logit(rare) − logit(common) = x1 + x2 − 2c: the boundary is the line x1 + x2 = 2c."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.layers[0].set_weights([np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([0.0, -2.0 * c])])
    return model


def test_geometry_finds_the_diagonal_crossing_and_the_signed_distances():
    model = _linear_model(1.5)
    x_test = np.array([[0.0, 0.0], [3.0, 3.0]], np.float32)
    out = gradtail_toy.geometry(model, x_test, np.array([0, 1]))
    assert out["balanced_accuracy"] == 1.0
    assert abs(out["diagonal_crossing"] - 1.5) <= 0.0011
    assert abs(out["diagonal_gap"] - (1.5 - gradtail_toy.BAYES_DIAGONAL) * math.sqrt(2)) <= 0.002
    # Two points "rare" (|θ| ≤ 0.07), one of each class, at signed distances −1 and +2 from the line.
    x = np.array([[1.5 - 1 / math.sqrt(2)] * 2, [1.5 + math.sqrt(2)] * 2, [0.0, 0.0]], np.float32)
    split = gradtail_toy.split_statistics(model, np.array([0.05, -0.07, 0.5]), x, np.array([0, 1, 0]))
    assert (split["common_class_rare"], split["rare_class_rare"], split["rare_class_hard"]) == (1, 1, 0)
    assert abs(split["rare_to_learned_mean"] - 0.5) <= 0.02 and abs(split["rare_to_learned_abs"] - 1.5) <= 0.02
    np.testing.assert_allclose(split["rare_to_bayes_mean"],
                               gradtail_toy.bayes_signed_distance(x[:2]).mean(), atol=1e-6)


def test_a_model_that_never_predicts_the_rare_class_has_no_crossing():
    model = _linear_model(100.0)
    out = gradtail_toy.geometry(model, np.zeros((2, 2), np.float32), np.array([0, 1]))
    assert out["diagonal_crossing"] is None and out["diagonal_gap"] is None and out["balanced_accuracy"] == 0.5


@pytest.mark.slow  # two GradTail models compiled and fitted: ~15 s on a loaded 2-core CPU
def test_zero_init_gives_algorithm_1s_zero_initialised_state():
    config = {"steps": 1, "batch_size": 64, "learning_rate": 0.01}
    x, y = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32), np.arange(64) % 2
    model = gradtail_toy.build("gradtail", 0, config, gradtail_toy.GRADTAIL, zero_init=True)
    plain = gradtail_toy.build("gradtail", 0, config, gradtail_toy.GRADTAIL)
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    plain.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    # Same first batch: the warm-up seeds w̃ with the batch mean gradient, Algorithm 1 with (1 − λ) of it;
    # on this first step w̃ = 0, so θ = 0, σ stays 0 and every weight is 1 in both.
    for seeded, zero in zip(plain.gradtail_mean_gradient, model.gradtail_mean_gradient):
        np.testing.assert_allclose(zero.numpy(), (1 - gradtail_toy.GRADTAIL["decay"]) * seeded.numpy(), atol=1e-7)
    assert float(model.gradtail_sigma.numpy()) == 0.0
    assert float(model.get_metrics_result()["gradtail_mean_weight"]) == 1.0
