import keras
import numpy as np
import pytest

from keras_longtail.weight_balancing import PerClassMaxNorm
from tests import helpers


def _numpy_projection(kernel, radius):
    norms = np.linalg.norm(kernel, axis=0, keepdims=True)
    return kernel * np.minimum(1.0, radius / np.maximum(norms, 1e-12))


def test_matches_numpy_projection_and_leaves_inside_vectors_unchanged():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(6, 5)).astype("float32") * np.array([0.1, 0.5, 1.0, 2.0, 4.0], "float32")
    radius = 1.5
    projected = PerClassMaxNorm(radius)(kernel).numpy()
    np.testing.assert_allclose(projected, _numpy_projection(kernel, radius), rtol=1e-6)
    norms = np.linalg.norm(kernel, axis=0)
    inside = norms <= radius
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(projected[:, inside], kernel[:, inside])  # bit for bit
    np.testing.assert_allclose(np.linalg.norm(projected[:, ~inside], axis=0), radius, rtol=1e-6)


def test_from_kernel_thresh_and_conv_axes():
    kernel = np.array([[3.0, 0.3, 0.0], [4.0, 0.4, 1.0]])  # norms 5, 0.5, 1
    assert PerClassMaxNorm.from_kernel(kernel, thresh=0.1).max_norm == pytest.approx(0.95)
    assert PerClassMaxNorm.from_kernel(kernel, thresh=1.0).max_norm == pytest.approx(5.0)
    conv = np.random.default_rng(1).normal(size=(3, 3, 2, 4)).astype("float32")
    projected = PerClassMaxNorm(0.5, axis=[0, 1, 2])(conv).numpy()
    np.testing.assert_allclose(np.sqrt((projected ** 2).sum(axis=(0, 1, 2))), 0.5, rtol=1e-5)


def test_serialization():
    helpers.assert_config_round_trip(PerClassMaxNorm(0.7, axis=[0, 1]))


def _fit(jit_compile=False):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(3, kernel_constraint=PerClassMaxNorm(0.3), name="classifier")])
    model.compile(keras.optimizers.SGD(1.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model.fit(x, np.arange(32) % 3, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.slow
def test_constraint_holds_under_mirrored_strategy_and_jit():
    expected = _fit()
    assert np.linalg.norm(expected[0], axis=0).max() <= 0.3 + 1e-6
    for got in (helpers.run_mirrored(lambda strategy: _fit()), _fit(jit_compile=True)):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


def test_bad_input():
    for value in (0.0, -1.0):
        with pytest.raises(ValueError, match="max_norm"):
            PerClassMaxNorm(value)
    with pytest.raises(TypeError, match="axis"):
        PerClassMaxNorm(1.0, axis="rows")
    with pytest.raises(ValueError, match="thresh"):
        PerClassMaxNorm.from_kernel(np.ones((2, 2)), thresh=1.5)
    with pytest.raises(ValueError, match="max_norm"):
        PerClassMaxNorm.from_kernel(np.zeros((2, 3)))


def test_integer_kernel_is_rejected_not_zeroed():
    # Issue 21 item 11: the scale was cast to the kernel's integer dtype, so every vector outside the ball became 0.
    with pytest.raises(TypeError, match="Expected a floating-point kernel. Received: w with dtype=int"):
        PerClassMaxNorm(1.0)(np.array([[3, 0], [4, 1]], "int32"))
    # Float kernels of any width keep working.
    projected = PerClassMaxNorm(1.0)(np.array([[3.0, 0.0], [4.0, 1.0]], "float16")).numpy()
    np.testing.assert_allclose(projected, [[0.6, 0.0], [0.8, 1.0]], rtol=1e-3)


def test_axis_outside_the_kernel_and_nan_kernels_raise_our_errors():
    # Issue 21 item 12: raw TensorFlow/numpy errors before.
    with pytest.raises(ValueError, match=r"Expected `axis` within the 2 axes.*Received: axis=2"):
        PerClassMaxNorm(1.0, axis=2)(np.ones((3, 2), "float32"))
    with pytest.raises(ValueError, match=r"Expected `axis`.*Received: axis=\[0, 3\]"):
        PerClassMaxNorm(1.0, axis=[0, 3])(np.ones((3, 3, 2), "float32"))
    with pytest.raises(ValueError, match=r"Expected `axis`.*Received: axis=2"):
        PerClassMaxNorm.from_kernel(np.ones((3, 2)), axis=2)
    kernel = np.ones((3, 2))
    kernel[1, 0] = np.nan
    with pytest.raises(ValueError, match="Expected a kernel with finite values.*Received"):
        PerClassMaxNorm.from_kernel(kernel)
    kernel[1, 0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        PerClassMaxNorm.from_kernel(kernel)
    # Negative axes inside the rank stay valid.
    np.testing.assert_allclose(PerClassMaxNorm(1.0, axis=-2)(np.full((4, 2), 1.0, "float32")).numpy(), 0.5)
