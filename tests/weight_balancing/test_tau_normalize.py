import keras
import numpy as np
import pytest

from keras_longtail.weight_balancing import tau_normalize


def test_tau_normalize_matches_numpy():
    kernel = np.random.default_rng(0).normal(size=(5, 4)) * np.array([0.5, 1.0, 2.0, 4.0])
    norms = np.linalg.norm(kernel, axis=0)
    for tau in (0.0, 0.5, 1.0, 1.9):
        np.testing.assert_allclose(np.asarray(tau_normalize(kernel, tau)), kernel / norms ** tau, rtol=1e-6)
    layer = keras.layers.Dense(4)
    layer.build((None, 5))
    tau_normalize(layer, 1.0)
    np.testing.assert_allclose(np.linalg.norm(layer.kernel.numpy(), axis=0), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="tau"):
        tau_normalize(kernel, -0.5)
