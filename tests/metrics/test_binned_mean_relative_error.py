import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.losses import MaskedL1
from keras_longtail.metrics import BinnedMeanRelativeError
from tests import helpers

KEYS = ["mre_lt_20", "mre_20_40", "mre_40_60", "mre_gt_60", "mre_total"]


def _maps(seed=0, batch=8, shape=(6, 10)):
    rng = np.random.default_rng(seed)
    y_true = rng.uniform(1.0, 90.0, size=(batch,) + shape).astype(np.float32)
    y_true[rng.uniform(size=y_true.shape) > 0.4] = 0.0
    y_true[0, 0, :4] = [20.0, 40.0, 60.0, 19.999]  # edges belong to the bin above
    y_pred = (y_true * rng.uniform(0.7, 1.3, size=y_true.shape)).astype(np.float32)
    y_pred[y_true == 0] = rng.uniform(0, 100, size=int((y_true == 0).sum()))
    return y_true, y_pred


def _reference(y_true, y_pred, weights=None, bins=(20, 40, 60)):
    """numpy: 100 · weighted mean of |pred − true| / true over the valid pixels of each bin."""
    if weights is None:
        weights = np.ones(len(y_true))
    w = np.broadcast_to(np.reshape(weights, (-1,) + (1,) * (y_true.ndim - 1)), y_true.shape)
    valid = y_true > 0
    relative = np.abs(y_pred - y_true) / np.where(valid, y_true, 1)
    edges = [0.0, *bins, np.inf]
    out = []
    for lower, upper in zip(edges[:-1], edges[1:]):
        in_bin = valid & (y_true >= lower) & (y_true < upper)
        out.append(100 * (relative * w)[in_bin].sum() / w[in_bin].sum() if w[in_bin].sum() > 0 else 0.0)
    out.append(100 * (relative * w)[valid].sum() / w[valid].sum())
    return np.array(out)


def _result(metric):
    return np.array([float(v) for v in metric.result().values()])


def test_matches_numpy_over_several_batches():
    y_true, y_pred = _maps()
    metric = BinnedMeanRelativeError()
    for start in (0, 3, 6):  # batches of 3, 3 and 2
        metric.update_state(y_true[start:start + 3][..., None], y_pred[start:start + 3][..., None])
    assert list(metric.result()) == KEYS
    np.testing.assert_allclose(_result(metric), _reference(y_true[:8], y_pred[:8]), rtol=1e-5)


def test_sample_weight_and_custom_bins():
    y_true, y_pred = _maps(1)
    weights = np.linspace(0.0, 2.0, len(y_true)).astype(np.float32)
    metric = BinnedMeanRelativeError(bins=(10, 30.5), name="err")
    metric.update_state(y_true, y_pred, sample_weight=weights)
    assert list(metric.result()) == ["err_lt_10", "err_10_30.5", "err_gt_30.5", "err_total"]
    np.testing.assert_allclose(_result(metric), _reference(y_true, y_pred, weights, bins=(10, 30.5)), rtol=1e-5)


def test_masked_pixels_never_count_and_empty_bins_read_zero():
    y_true = np.zeros((2, 4, 4), np.float32)
    y_true[0, 0, 0] = 10.0
    y_true[1, 2, 2] = np.nan  # NaN ground truth is "no ground truth" too
    y_pred = np.full_like(y_true, np.nan)  # even NaN predictions where there is no ground truth
    y_pred[0, 0, 0] = 12.0
    metric = BinnedMeanRelativeError()
    metric.update_state(y_true, y_pred)
    np.testing.assert_allclose(_result(metric), [20.0, 0.0, 0.0, 0.0, 20.0], rtol=1e-6)
    metric.reset_state()
    np.testing.assert_array_equal(_result(metric), np.zeros(5))


def test_graph_and_jit_update():
    y_true, y_pred = _maps(2)
    metric = BinnedMeanRelativeError()
    tf.function(metric.update_state, jit_compile=True)(y_true, y_pred)
    np.testing.assert_allclose(_result(metric), _reference(y_true, y_pred), rtol=1e-5)


@pytest.mark.slow
def test_under_mirrored_strategy_equals_numpy():
    y_true, y_pred = _maps(3, batch=8)
    strategy = helpers.mirrored_strategy()
    with strategy.scope():
        metric = BinnedMeanRelativeError()
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((y_true, y_pred)).batch(4))

    @tf.function
    def step(batch):
        strategy.run(lambda t, p: metric.update_state(t, p), args=batch)

    for batch in dataset:
        step(batch)
    np.testing.assert_allclose(_result(metric), _reference(y_true, y_pred), rtol=1e-5)


@pytest.mark.slow
def test_evaluate_under_mirrored_strategy_equals_one_device():
    y_true, _ = _maps(4, batch=8, shape=(8, 8))
    x = np.random.default_rng(5).normal(size=(8, 8, 8, 2)).astype(np.float32)

    def evaluate(strategy=None):
        def build():
            keras.utils.set_random_seed(0)
            inputs = keras.Input((8, 8, 2))
            outputs = keras.layers.Conv2D(1, 3, padding="same", bias_initializer=keras.initializers.Constant(40.0))(
                inputs)
            model = keras.Model(inputs, outputs)
            model.compile("sgd", loss=MaskedL1(), metrics=[BinnedMeanRelativeError()])
            return model

        if strategy is None:
            model = build()
        else:
            with strategy.scope():
                model = build()
        data = tf.data.Dataset.from_tensor_slices((x, y_true[..., None])).batch(4)
        prediction = model.predict(x, verbose=0)[..., 0]
        return model.evaluate(data, verbose=0, return_dict=True), prediction

    single, prediction = evaluate()
    mirrored, _ = evaluate(helpers.mirrored_strategy())
    expected = _reference(y_true, prediction)
    for key, value in zip(KEYS, expected):
        assert single[key] == pytest.approx(value, rel=1e-4)
        assert mirrored[key] == pytest.approx(value, rel=1e-4)


@pytest.mark.parametrize("bins", [(), (20, 10), (0, 20), (20, float("nan")), "20", (True, 3)])
def test_bad_bins_name_the_argument(bins):
    with pytest.raises(ValueError, match="bins"):
        BinnedMeanRelativeError(bins=bins)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="y_pred"):
        BinnedMeanRelativeError().update_state(np.ones((2, 4, 5)), np.ones((2, 5, 4)))


def test_serialization():
    revived = helpers.assert_config_round_trip(BinnedMeanRelativeError(bins=(10, 30.5), name="err"))
    assert revived.bins == [10.0, 30.5]
