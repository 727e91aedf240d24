"""Every registered method trains one tiny step through `run_training` on digits-LT with its defaults."""

import pytest

from keras_longtail import recipes

EXPECTED_RESULT_KEYS = {
    "ce": set(),
    "gala": {"gala_accumulation"},
    "gradtail": {"gradtail_max_weight", "gradtail_layers"},
    "gbg": {"num_groups", "gbg_mode", "groups", "gbg_normalization", "gbg_sampler"},
    "async": {"phase_two_learning_rate", "async_phase_one_classes", "async_steps_per_epoch"},
    "wb": {"stage_one_accuracy", "stage_two_max_norm"},
}
SLOW = {"gbg"}  # its class grouping pass: ~7 s on the shared 2-core machine


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
                                  for name in recipes.METHODS])
def test_each_registered_method_trains_one_step_with_its_defaults(name):
    method = recipes.get_method(name)
    results = recipes.run_training("digits-lt", method=name, epochs=1, steps_per_epoch=1, verbose=0)
    assert results["method"] == name and results["steps_per_epoch"] == 1
    assert set(results["accuracy"]) == {"overall", "many", "medium", "few"}
    assert 0 <= results["accuracy"]["overall"] <= 100
    assert EXPECTED_RESULT_KEYS[name] <= set(results)
    for option, default in method.defaults.items():  # the recorded options are the registered defaults
        if option in results and default is not None:  # None: resolved in the recipe (e.g. phase II's rate)
            assert results[option] == default, option


def test_every_registered_method_is_covered_here():
    assert set(EXPECTED_RESULT_KEYS) == set(recipes.METHODS)
