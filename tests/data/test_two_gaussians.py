import numpy as np
import pytest

from keras_longtail.data import two_gaussians


def test_shapes_moments_and_seed():
    x, y = two_gaussians(seed=3)
    assert x.shape == (10400, 2) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [10000, 400]
    np.testing.assert_allclose(x[y == 0].mean(0), [0, 0], atol=0.05)
    np.testing.assert_allclose(x[y == 1].mean(0), [2.2, 2.2], atol=0.12)
    np.testing.assert_allclose(x[y == 1].var(0), [0.5, 0.5], atol=0.1)
    np.testing.assert_array_equal(two_gaussians(seed=3)[0], x)
    assert not np.array_equal(two_gaussians(seed=4)[0], x)


def test_bad_input():
    with pytest.raises(ValueError, match="rare_variance"):
        two_gaussians(rare_variance=0)
    with pytest.raises(ValueError, match="rare_mean"):
        two_gaussians(rare_mean=(1, 2, 3))
    with pytest.raises(ValueError, match="num_rare"):
        two_gaussians(num_rare=0)
