"""`prepare_multi_worker_fit` leaves every model whose strategy stays on one worker as it is (fast checks).

What it changes for a multi-worker model is checked on two worker processes in `test_multi_worker.py`.
"""

import keras
import numpy as np
import pytest

from keras_longtail.distribute import prepare_multi_worker_fit
from tests import helpers

CHANGED = ("_maybe_symbolic_build", "train_step", "test_step", "_keras_longtail_multi_worker_fit")


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def _fit(model):
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.linspace(-1, 1, 24, dtype="float32").reshape(8, 3)
    model.fit(x, np.arange(8) % 2, batch_size=4, epochs=2, shuffle=False, verbose=0)
    return model.get_weights()


def test_one_device_model_is_returned_untouched():
    model = _model()
    assert prepare_multi_worker_fit(model) is model
    assert not set(CHANGED) & set(vars(model))
    for got, want in zip(_fit(model), _fit(_model())):
        np.testing.assert_array_equal(got, want)


def test_one_worker_mirrored_strategy_model_is_returned_untouched():
    model = helpers.run_mirrored(lambda strategy: prepare_multi_worker_fit(_model()))
    assert not set(CHANGED) & set(vars(model))


def test_keras_still_has_the_step_it_replaces():
    # If Keras renames this method, prepare_multi_worker_fit has nothing to replace: then either Keras fixed
    # keras-team/keras#20585 (test_keras_fit_without_preparation_fails_on_two_workers fails too) or the helper
    # must follow the new name.
    assert callable(getattr(keras.Model, CHANGED[0], None))


def test_bad_input():
    with pytest.raises(ValueError, match="Expected a keras.Model. Received: model="):
        prepare_multi_worker_fit(keras.layers.Dense(2))
