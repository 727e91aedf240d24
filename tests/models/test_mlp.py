import numpy as np
import pytest

from keras_longtail.models import mlp
from tests import helpers


def test_layers_and_save_load(tmp_path):
    model = mlp(3, (8, 8, 1), hidden_units=(16, 5))
    assert model.get_layer("classifier").units == 3
    assert model.get_layer("features").output.shape == (None, 5)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
    helpers.assert_keras_save_load(model, x, tmp_path)


def test_bad_input():
    with pytest.raises(ValueError, match="hidden_units"):
        mlp(2, (2,), hidden_units=())
    with pytest.raises(ValueError, match="hidden_units"):
        mlp(2, (2,), hidden_units=(0,))
