import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.data import class_balanced_sampler
from keras_longtail.data import progressive_class_probabilities
from keras_longtail.data import progressively_balanced_sampler


def _imbalanced():
    labels = np.array([0] * 300 + [1] * 60 + [2] * 10, np.int32)
    return tf.data.Dataset.from_tensor_slices((np.arange(len(labels)), labels)), [300, 60, 10]


def test_class_balanced_frequencies():
    ds, _ = _imbalanced()
    labels = np.array([int(y) for _, y in class_balanced_sampler(ds, 3, seed=1).take(3000)])
    np.testing.assert_allclose(np.bincount(labels) / len(labels), [1 / 3] * 3, atol=0.04)


def test_class_balanced_examples_belong_to_their_class():
    ds, _ = _imbalanced()
    for index, label in class_balanced_sampler(ds, 3, seed=0).take(200):
        expected = 0 if index < 300 else (1 if index < 360 else 2)
        assert int(label) == expected


def test_progressive_probabilities_formula():
    counts = [300, 60, 10]
    assert progressive_class_probabilities(counts, 0, 4) == pytest.approx([300 / 370, 60 / 370, 10 / 370])
    assert progressive_class_probabilities(counts, 4, 4) == pytest.approx([1 / 3] * 3)
    assert progressive_class_probabilities(counts, 9, 4) == pytest.approx([1 / 3] * 3)
    half = progressive_class_probabilities(counts, 2, 4)
    assert half == pytest.approx([0.5 * n / 370 + 0.5 / 3 for n in counts])


@pytest.mark.slow
def test_progressive_sampler_follows_schedule():
    ds, counts = _imbalanced()
    epoch_size = 1500
    sampled = progressively_balanced_sampler(ds, counts, epochs=2, epoch_size=epoch_size, seed=0)
    labels = np.array([int(y) for _, y in sampled.take(3 * epoch_size)])
    for epoch in range(3):
        freq = np.bincount(labels[epoch * epoch_size:(epoch + 1) * epoch_size], minlength=3) / epoch_size
        np.testing.assert_allclose(freq, progressive_class_probabilities(counts, epoch, 2), atol=0.04)


def test_bad_input():
    ds, counts = _imbalanced()
    with pytest.raises(ValueError, match="num_classes"):
        class_balanced_sampler(ds, 1)
    with pytest.raises(ValueError, match="class_counts"):
        progressively_balanced_sampler(ds, [300, 0, 10], epochs=3)
    with pytest.raises(ValueError, match="epochs"):
        progressively_balanced_sampler(ds, counts, epochs=0)
    with pytest.raises(TypeError, match="dataset"):
        class_balanced_sampler([1, 2], 2)
    with pytest.raises(TypeError, match="cache_classes"):
        class_balanced_sampler(ds, 3, cache_classes=1)
    with pytest.raises(TypeError, match="cache_classes"):
        progressively_balanced_sampler(ds, counts, epochs=3, cache_classes=None)


@pytest.mark.parametrize("make", [lambda ds, counts, cache: class_balanced_sampler(ds, 3, seed=2, cache_classes=cache),
                                  lambda ds, counts, cache: progressively_balanced_sampler(
                                      ds, counts, epochs=2, epoch_size=100, seed=2, cache_classes=cache)],
                         ids=["class_balanced", "progressively_balanced"])
def test_cached_classes_give_the_same_draws(make):
    ds, counts = _imbalanced()
    draws = {cache: [(int(x), int(y)) for x, y in make(ds, counts, cache).take(400)] for cache in (True, False)}
    assert draws[True] == draws[False]
    assert sum(y == 2 for _, y in draws[True]) > 20  # class 2 (10 examples) went through several passes
