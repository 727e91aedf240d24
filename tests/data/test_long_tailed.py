import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.data import long_tailed


def _dataset(labels):
    return tf.data.Dataset.from_tensor_slices((np.arange(len(labels)), np.asarray(labels, np.int32)))


def test_keeps_first_n_of_each_class_in_order():
    labels = [2, 0, 1, 0, 2, 0, 1, 2, 0, 2]
    kept = [int(i) for i, _ in long_tailed(_dataset(labels), [2, 1, 3])]
    assert kept == [0, 1, 2, 3, 4, 7]


def test_counts_and_zero_class():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=400)
    counts = [50, 20, 0, 5]
    kept = np.array([int(y) for _, y in long_tailed(_dataset(labels), counts)])
    assert np.bincount(kept, minlength=4).tolist() == counts
    # Deterministic rule: the first n_k indices of class k.
    indices = np.array([int(i) for i, _ in long_tailed(_dataset(labels), counts)])
    expected = np.sort(np.concatenate([np.flatnonzero(labels == k)[:n] for k, n in enumerate(counts)]))
    np.testing.assert_array_equal(indices, expected)


def test_seeded_subset_is_reproducible_and_random():
    labels = np.repeat(np.arange(3), 100)
    counts = [30, 10, 5]
    first = [int(i) for i, _ in long_tailed(_dataset(labels), counts, seed=7)]
    again = [int(i) for i, _ in long_tailed(_dataset(labels), counts, seed=7)]
    other = [int(i) for i, _ in long_tailed(_dataset(labels), counts, seed=8)]
    deterministic = [int(i) for i, _ in long_tailed(_dataset(labels), counts)]
    assert first == again
    assert sorted(first) != sorted(other)
    assert sorted(first) != deterministic
    assert np.bincount(labels[first], minlength=3).tolist() == counts


def test_dict_and_longer_tuple_elements():
    labels = np.array([1, 0, 1, 1, 0], np.int64)
    ds = tf.data.Dataset.from_tensor_slices({"image": np.arange(5.0), "label": labels})
    kept = [float(e["image"]) for e in long_tailed(ds, [1, 2])]
    assert kept == [0.0, 1.0, 2.0]
    ds3 = tf.data.Dataset.from_tensor_slices((np.arange(5.0), labels, np.ones(5)))
    assert len(list(long_tailed(ds3, [2, 0]))) == 2


def test_labels_out_of_range_fail_on_iteration():
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must lie in"):
        list(long_tailed(_dataset([0, 1, 5]), [1, 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must lie in"):
        list(long_tailed(_dataset([0, -1]), [1, 1]))


def test_bad_input():
    ds = _dataset([0, 1])
    with pytest.raises(ValueError, match="class_counts"):
        long_tailed(ds, [3, -1])
    with pytest.raises(ValueError, match="class_counts"):
        long_tailed(ds, [3])
    with pytest.raises(TypeError, match="dataset"):
        long_tailed(np.arange(3), [1, 1])
    with pytest.raises(ValueError, match="unbatched"):
        long_tailed(ds.batch(2), [1, 1])
    with pytest.raises(TypeError, match="integer labels"):
        long_tailed(tf.data.Dataset.from_tensor_slices((np.arange(2), np.ones(2))), [1, 1])
    with pytest.raises(ValueError, match="cardinality"):
        long_tailed(ds.filter(lambda x, y: True), [1, 1], seed=0)
