import pytest

from keras_longtail.weight_balancing import decoupled_weight_decay


def test_decoupled_weight_decay():
    assert decoupled_weight_decay(5e-3) == 5e-3
    assert decoupled_weight_decay(5e-3, momentum=0.9) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="momentum"):
        decoupled_weight_decay(1e-3, momentum=1.0)


def test_decoupled_weight_decay_is_not_rounded():
    # Issue 21 item 13: rounding to 12 decimals turned 1e-13 into 0.0.
    assert decoupled_weight_decay(1e-13) == 1e-13
    assert decoupled_weight_decay(3e-14, momentum=0.5) == pytest.approx(6e-14, rel=1e-12)
    assert decoupled_weight_decay(1e-12, learning_rate_ratio=0.3) == pytest.approx(3e-13, rel=1e-12)
