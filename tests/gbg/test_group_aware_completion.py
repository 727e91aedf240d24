import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.data import completion_probabilities
from keras_longtail.data import group_aware_completion
from keras_longtail.gbg import ClassGrouping

# classes 0, 1 (head) in group 0; classes 2, 3 (tail) in group 1; class 4 (very rare) in group 2
COUNTS = [400, 200, 40, 4, 2]
GROUPING = ClassGrouping([0, 0, 1, 1, 2])
LABELS = np.repeat(np.arange(5), COUNTS)
FEATURES = np.arange(len(LABELS), dtype=np.float32)


def _dataset():
    return tf.data.Dataset.from_tensor_slices((FEATURES, LABELS))


def test_probabilities_follow_the_class_balanced_formula():
    beta = 0.99
    weights = (1 - beta) / (1 - beta ** np.array(COUNTS, float))
    expected = np.array([weights[0] / (weights[0] + weights[1]), weights[1] / (weights[0] + weights[1]),
                         weights[2] / (weights[2] + weights[3]), weights[3] / (weights[2] + weights[3]), 1.0])
    np.testing.assert_allclose(completion_probabilities(GROUPING, COUNTS, beta), expected)
    per_group = completion_probabilities(GROUPING, COUNTS, [0.0, 0.999, 0.5])
    np.testing.assert_allclose(per_group[:2], [0.5, 0.5])  # beta = 0: uniform over classes
    np.testing.assert_allclose(completion_probabilities(GROUPING, [4, 0, 40, 4, 2])[:2], [1.0, 0.0])


@pytest.mark.slow
def test_every_batch_holds_every_group_and_completions_are_class_balanced():
    batch_size = 20
    fill = 5  # ceil(0.25 * 20)
    batches = group_aware_completion(_dataset(), GROUPING, COUNTS, batch_size, beta=0.99, seed=0, min_fraction=0.25,
                                     shuffle_buffer=len(LABELS))
    groups = np.array(GROUPING.groups)
    added = []
    completed_batches = 0
    for features, labels in batches.take(150):
        features, labels = features.numpy(), labels.numpy()
        np.testing.assert_array_equal(LABELS[features.astype(int)], labels)  # features travel with labels
        head = labels[:batch_size]
        missing = [g for g in range(3) if not np.isin(groups[head], g).any()]
        assert len(labels) == batch_size + fill * len(missing)
        assert set(groups[labels]) == {0, 1, 2}
        tail = labels[batch_size:]
        for position, g in enumerate(missing):
            part = tail[position * fill:(position + 1) * fill]
            assert set(groups[part]) == {g}
            added.extend(part.tolist())
        completed_batches += bool(missing)
    assert completed_batches > 50
    added = np.array(added)
    in_group_1 = added[np.isin(added, [2, 3])]
    expected = completion_probabilities(GROUPING, COUNTS, 0.99)[3]
    # ~24 % of batches of 20 lack group 1 (44 of 646 examples): ~180 completions expected over 150 batches.
    assert len(in_group_1) > 100
    assert np.mean(in_group_1 == 3) == pytest.approx(expected, abs=0.07)


def test_augment_is_applied_and_groups_without_examples_are_skipped():
    dataset = _dataset().filter(lambda x, y: y < 4)
    batches = group_aware_completion(dataset, GROUPING, [400, 200, 40, 4, 0], 10,
                                     augment=lambda x, y: (x + 0.5, y), seed=1)
    for features, labels in batches.take(5):
        assert np.all(features.numpy() % 1 == 0.5) and not np.isin(labels.numpy(), 4).any()


def test_bad_input():
    with pytest.raises(ValueError, match="min_fraction"):
        group_aware_completion(_dataset(), GROUPING, COUNTS, 10, min_fraction=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        group_aware_completion(_dataset(), GROUPING, COUNTS, 0)
    with pytest.raises(ValueError, match="class_counts"):
        group_aware_completion(_dataset(), GROUPING, COUNTS[:4], 10)
    with pytest.raises(ValueError, match="beta"):
        group_aware_completion(_dataset(), GROUPING, COUNTS, 10, beta=1.0)
    with pytest.raises(ValueError, match="beta"):
        group_aware_completion(_dataset(), GROUPING, COUNTS, 10, beta=[0.9, 0.9])
    with pytest.raises(TypeError, match="dataset"):
        group_aware_completion([1, 2], GROUPING, COUNTS, 10)
    with pytest.raises(ValueError, match="dataset"):
        group_aware_completion(_dataset().batch(4), GROUPING, COUNTS, 10)
    with pytest.raises(TypeError, match="cache_classes"):
        group_aware_completion(_dataset(), GROUPING, COUNTS, 10, cache_classes="yes")


def _counting_dataset():
    """`_dataset()` read through a generator, and a list counting the passes made over it."""
    passes = []

    def generate():
        passes.append(1)
        yield from zip(FEATURES, LABELS)

    spec = (tf.TensorSpec((), tf.float32), tf.TensorSpec((), tf.int64))
    return tf.data.Dataset.from_generator(generate, output_signature=spec), passes


def test_cached_class_pools_read_the_dataset_once_and_give_the_same_batches():
    streams = {}
    for cache in (True, False):
        dataset, passes = _counting_dataset()
        batches = group_aware_completion(dataset, GROUPING, COUNTS, 10, seed=3, shuffle_buffer=len(LABELS),
                                         cache_classes=cache)
        streams[cache] = [(x.numpy(), y.numpy()) for x, y in batches.take(40)]
        # class 4 (2 examples) is completed into nearly every batch: without the cache each of its passes re-reads
        # all 646 examples; with it, one pass per class pool plus the main stream's (two with tf.data's read-ahead)
        assert (len(passes) <= len(COUNTS) + 2) if cache else (len(passes) > 4 * len(COUNTS))
    for (x_cached, y_cached), (x_plain, y_plain) in zip(streams[True], streams[False]):
        np.testing.assert_array_equal(x_cached, x_plain)
        np.testing.assert_array_equal(y_cached, y_plain)
