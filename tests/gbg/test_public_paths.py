"""GBG lives in keras_longtail.gbg; the public namespaces it used to live in re-export the very same objects."""

import importlib

import pytest

import keras_longtail.gbg as gbg

OLD_PATHS = [
    ("keras_longtail.training", "GBGMixin"),
    ("keras_longtail.training", "GBGModel"),
    ("keras_longtail.optimizers", "GBGOptimizer"),
    ("keras_longtail.ops", "min_norm_weights"),
    ("keras_longtail.data", "group_aware_completion"),
    ("keras_longtail.data", "completion_probabilities"),
]


@pytest.mark.parametrize("namespace, name", OLD_PATHS)
def test_old_public_path_is_the_gbg_object(namespace, name):
    module = importlib.import_module(namespace)
    assert name in module.__all__
    assert getattr(module, name) is getattr(gbg, name)


def test_gbg_exports_every_gbg_name():
    assert {name for _, name in OLD_PATHS} <= set(gbg.__all__)
    assert {"ClassGrouping", "group_by_similarity", "group_classes"} <= set(gbg.__all__)
    assert "GBG_v1" in gbg.__doc__ and "arxiv.org/abs/2310.20490" in gbg.__doc__


def test_serialization_keys_unchanged():
    # saved .keras files name classes by their registered key, which must not move with the files
    import keras

    for name in ("GBGModel", "GBGOptimizer", "ClassGrouping"):
        assert keras.saving.get_registered_name(getattr(gbg, name)) == f"keras_longtail>{name}"
