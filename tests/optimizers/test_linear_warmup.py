import keras
import numpy as np
import pytest

from keras_longtail.optimizers import LinearWarmup
from tests import helpers


def _after():
    return keras.optimizers.schedules.PiecewiseConstantDecay([100, 150], [0.1, 0.001, 1e-5])


def test_equals_the_reference_formula():
    schedule = LinearWarmup(_after(), warmup_steps=8, peak=0.1)
    steps = np.arange(200)
    expected = np.where(steps < 8, 0.1 * (steps + 1) / 8, np.where(steps <= 100, 0.1, np.where(steps <= 150, 1e-3,
                                                                                                1e-5)))
    np.testing.assert_allclose([float(schedule(int(t))) for t in steps], expected, rtol=1e-6)


def test_serializes_with_an_optimizer_and_in_a_saved_model(tmp_path):
    schedule = LinearWarmup(_after(), warmup_steps=3, peak=0.1)
    helpers.assert_config_round_trip(schedule)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.SGD(schedule, momentum=0.9), "mse")
    model.fit(np.ones((4, 2)), np.zeros((4, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    revived = keras.saving.load_model(tmp_path / "m.keras")
    assert abs(float(revived.optimizer.learning_rate) - float(model.optimizer.learning_rate)) < 1e-9
    assert keras.optimizers.serialize(revived.optimizer)["config"]["learning_rate"]["class_name"] == "LinearWarmup"


def test_bad_input():
    with pytest.raises(ValueError, match="Expected `after`"):
        LinearWarmup(0.1, warmup_steps=3, peak=0.1)
    with pytest.raises(ValueError, match="warmup_steps"):
        LinearWarmup(_after(), warmup_steps=0, peak=0.1)
    with pytest.raises(ValueError, match="peak"):
        LinearWarmup(_after(), warmup_steps=3, peak=0.0)
