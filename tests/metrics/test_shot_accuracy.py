import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.data import shot_splits
from keras_longtail.metrics import PerClassAccuracy
from keras_longtail.metrics import ShotAccuracy
from tests import helpers

COUNTS = [500, 300, 150, 90, 60, 30, 20, 12, 8, 5]  # Many 0-2, Medium 3-6, Few 7-9


def _reference(labels, predicted, counts, weights=None):
    weights = np.ones(len(labels)) if weights is None else weights
    num_classes = len(counts)
    correct = np.bincount(labels, weights=weights * (labels == predicted), minlength=num_classes)
    total = np.bincount(labels, weights=weights, minlength=num_classes)
    seen = total > 0
    accuracy = np.where(seen, correct / np.maximum(total, 1e-12), 0.0)
    out = {"acc_overall": accuracy[seen].mean()}
    for name, members in shot_splits(counts)._asdict().items():
        members = [k for k in members if seen[k]]
        if name in ("many", "medium", "few"):
            out[f"acc_{name}"] = accuracy[members].mean() if members else 0.0
    return out, accuracy


def _random_batch(rng, n=200, num_classes=10):
    labels = rng.integers(0, num_classes, size=n)
    logits = rng.normal(size=(n, num_classes)).astype(np.float32)
    logits[np.arange(n), labels] += rng.normal(1.0, 1.0, size=n)  # better than chance
    return labels, logits


def test_matches_numpy_over_batches_with_weights():
    rng = np.random.default_rng(0)
    metric = ShotAccuracy(COUNTS)
    all_labels, all_logits, all_weights = [], [], []
    for _ in range(3):
        labels, logits = _random_batch(rng)
        weights = rng.uniform(0.1, 2.0, size=len(labels))
        metric.update_state(labels, logits, sample_weight=weights)
        all_labels.append(labels), all_logits.append(logits), all_weights.append(weights)
    labels, logits = np.concatenate(all_labels), np.concatenate(all_logits)
    expected, per_class = _reference(labels, logits.argmax(-1), COUNTS, np.concatenate(all_weights))
    result = {k: float(v) for k, v in metric.result().items()}
    assert result.keys() == expected.keys()
    for key in expected:
        assert result[key] == pytest.approx(expected[key], abs=1e-6)
    np.testing.assert_allclose(metric.per_class(), per_class, atol=1e-6)
    metric.reset_state()
    assert float(metric.result()["acc_overall"]) == 0.0


def test_one_hot_and_column_labels():
    rng = np.random.default_rng(1)
    labels, logits = _random_batch(rng)
    sparse, one_hot, column = ShotAccuracy(COUNTS), ShotAccuracy(COUNTS), ShotAccuracy(COUNTS)
    sparse.update_state(labels, logits)
    one_hot.update_state(np.eye(10)[labels], logits)
    column.update_state(labels[:, None], logits)
    for other in (one_hot, column):
        for key, value in sparse.result().items():
            assert float(other.result()[key]) == pytest.approx(float(value))


def test_absent_classes_never_nan_and_empty_split_absent():
    metric = ShotAccuracy(COUNTS)
    metric.update_state([0, 0, 3], [[1.0] + [0] * 9, [0, 1] + [0] * 8, [0, 0, 0, 1] + [0] * 6])
    result = {k: float(v) for k, v in metric.result().items()}
    assert not any(np.isnan(v) for v in result.values())
    assert result["acc_overall"] == pytest.approx(0.75)  # classes 0 (0.5) and 3 (1.0)
    assert result["acc_few"] == 0.0  # no Few class seen yet
    fashion = ShotAccuracy([6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60])
    assert "acc_few" not in fashion.result()
    assert set(fashion.result()) == {"acc_overall", "acc_many", "acc_medium"}


def test_labels_out_of_range():
    metric = ShotAccuracy([10, 5])
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        metric.update_state([0, 2], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="y_pred"):
        metric.update_state([0, 1], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="class_counts"):
        ShotAccuracy([10, -1])
    with pytest.raises(ValueError, match="num_classes"):
        PerClassAccuracy(1)


def test_serialization():
    revived = helpers.assert_config_round_trip(ShotAccuracy(COUNTS, many=50, few=10, name="shot"))
    assert revived.many == 50 and revived.name == "shot"
    helpers.assert_config_round_trip(PerClassAccuracy(4))


def _model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(10, kernel_initializer="glorot_uniform", name="classifier")(inputs))


def _evaluate(model_fn, x, y, batch_size, **compile_kwargs):
    model = model_fn()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[ShotAccuracy(COUNTS)], **compile_kwargs)
    return model, model.evaluate(x, y, batch_size=batch_size, return_dict=True, verbose=0)


@pytest.mark.slow
def test_mirrored_strategy_and_jit_equal_one_device():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(96, 4)).astype(np.float32)
    y = rng.integers(0, 10, size=96)
    keras.utils.set_random_seed(0)
    single_model, single = _evaluate(_model, x, y, 32)
    weights = single_model.get_weights()

    def build():
        model = _model()
        model.set_weights(weights)
        return model

    mirrored = helpers.run_mirrored(lambda strategy: _evaluate(build, x, y, 32)[1])
    _, jit = _evaluate(build, x, y, 32, jit_compile=True)
    expected_pred = (x @ weights[0] + weights[1]).argmax(-1)
    expected, _ = _reference(y, expected_pred, COUNTS)
    for key, value in expected.items():
        assert single[key] == pytest.approx(value, abs=1e-6)
        assert mirrored[key] == pytest.approx(value, abs=1e-6)
        assert jit[key] == pytest.approx(value, abs=1e-6)
