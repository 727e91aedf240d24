import pytest

from keras_longtail.dual_phase import split_by_frequency
from keras_longtail.data import imbalance_profile


def test_default_is_many_plus_medium():
    counts = imbalance_profile(100, 500, 100)  # CIFAR-100-LT IF 100: 35 Many, 35 Medium, 30 Few
    split = split_by_frequency(counts)
    assert split.phase_one == list(range(70)) and split.phase_two == list(range(70, 100))


@pytest.mark.parametrize("max_count", [5000, 6000])  # CIFAR-10-LT and Fashion-MNIST-LT, IF 100: no Few class
def test_default_falls_back_to_many_without_few_classes(max_count):
    split = split_by_frequency(imbalance_profile(10, max_count, 100))
    assert split.phase_one == list(range(8)) and split.phase_two == [8, 9]


def test_ranks_by_count_not_by_id():
    counts = [30, 500, 7, 120, 500, 60]
    split = split_by_frequency(counts, threshold=3)
    assert split.phase_one == [1, 4, 3]  # ties keep the smaller id first
    assert split.phase_two == [5, 0, 2]
    assert split.phase_one_labels == {1: 0, 4: 1, 3: 2}
    # Default: counts > 20 are Many/Medium: 5 classes in phase I, class 2 (7 images) in phase II.
    assert split_by_frequency(counts).phase_two == [2]


def test_bad_input():
    for threshold in (0, 6, -1):
        with pytest.raises(ValueError, match="threshold"):
            split_by_frequency([30, 500, 7, 120, 500, 60], threshold=threshold)
    with pytest.raises(TypeError, match="threshold"):
        split_by_frequency([30, 500], threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        split_by_frequency([10, 5, 3])  # all Few: the default rule leaves phase I empty
    with pytest.raises(ValueError, match="class_counts"):
        split_by_frequency([10, -5])
