import numpy as np

from keras_longtail.metrics import PerClassAccuracy


def test_per_class_matches_numpy():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=300)
    logits = rng.normal(size=(300, 5))
    metric = PerClassAccuracy(5)
    metric.update_state(labels[:100], logits[:100])
    metric.update_state(labels[100:], logits[100:])
    predicted = logits.argmax(-1)
    expected = [np.mean(predicted[labels == k] == k) for k in range(5)]
    np.testing.assert_allclose(metric.result(), expected, atol=1e-6)
