import pytest

from keras_longtail.data import imbalance_profile


@pytest.mark.parametrize(
    "num_classes, max_count, factor, total",
    [
        # Totals of the reference CIFAR-LT code (LDAM-DRW / class-balanced loss).
        (100, 500, 100, 10847),
        (100, 500, 50, 12608),
        (100, 500, 10, 19573),
        (100, 500, 200, 9502),
        (10, 5000, 100, 12406),
        (10, 5000, 50, 13996),
        (10, 5000, 10, 20431),
        (10, 5000, 200, 11203),
    ],
)
def test_exp_profile_matches_reference_totals(num_classes, max_count, factor, total):
    counts = imbalance_profile(num_classes, max_count, factor)
    assert sum(counts) == total
    assert counts[0] == max_count
    assert counts[-1] == int(max_count / factor)
    assert all(a >= b for a, b in zip(counts, counts[1:]))


def test_cifar10_if100_hand_computed():
    # floor(5000 * 100 ** (-i / 9)) by hand.
    assert imbalance_profile(10, 5000, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_factor_one_is_balanced():
    assert imbalance_profile(5, 7, 1) == [7] * 5


def test_step_profile():
    assert imbalance_profile(4, 100, 10, kind="step") == [100, 100, 10, 10]
    # Odd class counts: the tail gets the extra class.
    assert imbalance_profile(5, 100, 10, kind="step") == [100, 100, 10, 10, 10]


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        (dict(num_classes=10, max_count=500, imbalance_factor=0.5), ValueError, "imbalance_factor"),
        (dict(num_classes=1, max_count=500, imbalance_factor=10), ValueError, "num_classes"),
        (dict(num_classes=10, max_count=0, imbalance_factor=10), ValueError, "max_count"),
        (dict(num_classes=10, max_count=5, imbalance_factor=10), ValueError, "imbalance_factor"),
        (dict(num_classes=10, max_count=500, imbalance_factor=10, kind="linear"), ValueError, "kind"),
        (dict(num_classes=2.5, max_count=500, imbalance_factor=10), TypeError, "num_classes"),
        (dict(num_classes=10, max_count=500, imbalance_factor=float("nan")), ValueError, "imbalance_factor"),
    ],
)
def test_bad_input(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        imbalance_profile(**kwargs)
