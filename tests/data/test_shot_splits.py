import pytest

from keras_longtail.data import imbalance_profile
from keras_longtail.data import shot_splits


def test_cifar100_if100_is_35_35_30():
    splits = shot_splits(imbalance_profile(100, 500, 100))
    assert (len(splits.many), len(splits.medium), len(splits.few)) == (35, 35, 30)
    assert splits.many == list(range(35))


def test_boundaries():
    assert shot_splits([101, 100, 20, 19]) == ([0], [1, 2], [3])


def test_fashion_mnist_lt_has_no_few_class():
    splits = shot_splits(imbalance_profile(10, 6000, 100))
    assert splits.few == []
    assert len(splits.many) == 8


def test_bad_input():
    with pytest.raises(ValueError, match="few"):
        shot_splits([10, 20], many=10, few=50)
    with pytest.raises(ValueError, match="class_counts"):
        shot_splits([10, -2])
