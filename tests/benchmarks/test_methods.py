"""The cost benchmarks take their methods from the registry (`keras_longtail.recipes.METHODS`)."""

import pytest

from benchmarks import _methods
from benchmarks import gbg_overhead
from benchmarks import gradtail_overhead
from benchmarks import overhead
from benchmarks import peak_memory
from benchmarks import restart_cost
from keras_longtail import recipes


def test_every_cost_variant_measures_a_registered_method():
    assert set(_methods.VARIANTS.values()) <= set(recipes.METHODS)
    for variants in (list(overhead.METHODS) + list(overhead.MODELS), peak_memory.METHODS,
                     [v for v in gradtail_overhead.COST_VARIANTS.values() if v],
                     [v for v in gbg_overhead.COST_VARIANTS.values() if v], restart_cost.COST_VARIANTS.values()):
        assert set(variants) <= set(_methods.VARIANTS), variants
    assert restart_cost.METHODS == ["ce", "gala", "gradtail", "gbg"]  # the registry's order
    with pytest.raises(ValueError, match=r"Expected a cost variant in .* Received: variant='focal'"):
        _methods.method_of("focal")


def test_gala_variants_use_the_registered_and_the_official_accumulation():
    loss, callbacks = _methods.loss_and_callbacks("gala", 10)
    assert loss.accumulation == recipes.get_method("gala").defaults["gala_accumulation"] and len(callbacks) == 1
    assert _methods.loss_and_callbacks("gala-official", 10)[0].accumulation == "official"
    with pytest.raises(ValueError, match="Received: variant='gbg-exact'"):
        _methods.loss_and_callbacks("gbg-exact", 10)


def test_long_tailed_batch_holds_every_class_and_group():
    images, labels, grouping = _methods.long_tailed_batch(12, classes=10, groups=4)
    assert images.shape == (12, 32, 32, 3) and sorted(set(labels)) == list(range(10))
    assert sorted(set(grouping.groups)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="batch_size=9"):
        _methods.long_tailed_batch(9)
