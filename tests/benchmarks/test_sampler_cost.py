"""The pipelines `benchmarks.sampler_cost` times: like for like, cached or not."""

import types

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import sampler_cost


def _loaded():
    counts = [60, 40, 30, 20, 15, 10, 8, 6, 4, 2]
    labels = np.repeat(np.arange(10), counts)
    images = np.random.default_rng(0).uniform(size=(len(labels), 32, 32, 3)).astype(np.float32)
    return types.SimpleNamespace(train=tf.data.Dataset.from_tensor_slices((images, labels)), class_counts=counts,
                                 num_train=len(labels), num_classes=10)


def test_cached_and_uncached_pipelines_draw_the_same_labels():
    pipelines = sampler_cost.pipelines(_loaded())
    assert set(pipelines) == {"shuffled", "gac_cached", "gac", "class_balanced_cached", "class_balanced"}
    for cached, plain in (("gac_cached", "gac"), ("class_balanced_cached", "class_balanced")):
        first = [(x.shape[1:], y.numpy()) for x, y in pipelines[cached].take(3)]
        second = [(x.shape[1:], y.numpy()) for x, y in pipelines[plain].take(3)]
        for (shape, labels), (other_shape, other_labels) in zip(first, second):
            assert shape == other_shape == (32, 32, 3) and len(labels) >= sampler_cost.BATCH_SIZE
            np.testing.assert_array_equal(labels, other_labels)


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        sampler_cost.main(["--data-dir", "x", "--rounds", "0"])
