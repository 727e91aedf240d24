import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.layers import CosineClassifier
from keras_longtail.dual_phase import IntraClassMarginLoss
from tests import helpers


def _reference(labels, logits, margin, scale, num_negatives):
    """Σ over the K highest negative cosines of max(0, m − cos_y + cos_k)."""
    cosines = logits.astype(np.float64) / scale
    losses = []
    for y, row in zip(labels, cosines):
        negatives = np.sort(np.delete(row, y))[::-1]
        if num_negatives is not None:
            negatives = negatives[:num_negatives]
        losses.append(np.maximum(0.0, margin - row[y] + negatives).sum())
    return np.array(losses)


@pytest.mark.parametrize("num_negatives", [1, 2, None])
def test_matches_numpy_reference(num_negatives):
    rng = np.random.default_rng(0)
    logits = rng.uniform(-16, 16, size=(20, 6)).astype("float32")
    labels = rng.integers(0, 6, size=20)
    expected = _reference(labels, logits, 0.3, 16.0, num_negatives)
    assert np.sum(expected > 0) > 5 and np.sum(expected == 0) > 0  # both sides of the hinge
    loss = IntraClassMarginLoss(margin=0.3, scale=16.0, num_negatives=num_negatives, reduction=None)
    np.testing.assert_allclose(loss(labels[:, None], logits).numpy(), expected, rtol=1e-5, atol=1e-6)
    mean = IntraClassMarginLoss(margin=0.3, scale=16.0, num_negatives=num_negatives)(labels, logits)
    assert float(mean) == pytest.approx(expected.mean(), rel=1e-5)


def test_limiting_cases():
    logits = np.array([[16.0, -16.0, -16.0], [0.0, 0.0, 0.0]], "float32")
    loss = IntraClassMarginLoss(margin=0.5, num_negatives=None, reduction=None)
    np.testing.assert_allclose(loss([0, 2], logits).numpy(), [0.0, 1.0], atol=1e-6)  # separated; all tied
    zero_margin = IntraClassMarginLoss(margin=0.0, reduction=None)
    assert float(zero_margin([0], [[1.0, 1.0, 1.0]])[0]) == 0.0


def test_bad_input():
    with pytest.raises(ValueError, match="margin"):
        IntraClassMarginLoss(margin=-0.1)
    with pytest.raises(ValueError, match="scale"):
        IntraClassMarginLoss(scale=0.0)
    with pytest.raises(ValueError, match="num_negatives"):
        IntraClassMarginLoss(num_negatives=0)
    with pytest.raises(ValueError, match="num_negatives"):
        IntraClassMarginLoss(num_negatives=3)([0], [[1.0, 0.0, 0.0]])
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        IntraClassMarginLoss()([3], [[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="y_pred"):
        IntraClassMarginLoss()([0], [1.0, 0.0, 0.0])


def test_serialization():
    revived = helpers.assert_config_round_trip(
        IntraClassMarginLoss(margin=0.2, scale=10.0, num_negatives=None, reduction="sum", name="intra"))
    assert revived.num_negatives is None and revived.scale == 10.0 and revived.name == "intra"


X = np.random.default_rng(5).normal(size=(32, 4)).astype("float32")
Y = np.random.default_rng(6).integers(0, 5, size=32)


def _fit(jit_compile=False):
    model = keras.Sequential([keras.Input((4,)), CosineClassifier(5, scale=16.0)])
    model.set_weights([np.random.default_rng(7).normal(size=(4, 5)).astype("float32")])
    model.compile(keras.optimizers.SGD(0.5), loss=IntraClassMarginLoss(), jit_compile=jit_compile)
    model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.slow
def test_mirrored_strategy_and_jit_equal_one_device():
    expected = _fit()
    for name, got in (("mirrored", helpers.run_mirrored(lambda strategy: _fit())), ("jit", _fit(jit_compile=True))):
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-6, err_msg=name)


def test_batch_size_mismatch_raises_our_error():
    # Issue 21 item 12: a raw TensorFlow error before.
    logits = np.zeros((3, 4), "float32")
    with pytest.raises(ValueError, match=r"Expected `y_true` and `y_pred` to hold the same number of examples.*"
                                         r"Received: y_true with 2 labels, y_pred with shape \(3, 4\)"):
        IntraClassMarginLoss()([0, 1], logits)
    dynamic = tf.function(lambda y, z: IntraClassMarginLoss()(y, z),
                          input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 4], tf.float32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of examples"):
        dynamic(tf.constant([0, 1]), tf.constant(logits))


def test_out_of_range_labels_give_nan_under_jit():
    # Issue 21 item 10: XLA drops the range assertion; the examples with a bad label get NaN, the others are exact.
    logits = np.random.default_rng(1).uniform(-16, 16, size=(4, 5)).astype("float32")
    labels = np.array([0, 5, 2, -1], "int32")
    loss = IntraClassMarginLoss(margin=0.3, reduction=None)
    values = tf.function(lambda y, z: loss(y, z), jit_compile=True)(labels, logits).numpy()
    assert np.isnan(values[1]) and np.isnan(values[3])
    np.testing.assert_allclose(values[[0, 2]], _reference(labels[[0, 2]], logits[[0, 2]], 0.3, 16.0, 2), rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        tf.function(lambda y, z: loss(y, z))(labels, logits)  # graph without XLA: the assertion
