"""Every public import path of the toolkit before the one-home-per-method layout (issue 18) still works.

The names below are the namespaces' `__all__` on main before the method folders (`gala/`, `weight_balancing/`,
`dual_phase/`, `gradtail/`, `gbg/`) took the code: `keras_longtail.losses.GALALoss` and the like are the public
face and re-export from the method folders. A name that moves home must stay importable from here.

The files moved, so their old module paths (`keras_longtail.losses.gala_loss`, which the API reference used to
show) raise a `ModuleNotFoundError` that names the new path (`keras_longtail._internal.moved_modules`).
"""

import importlib
import re

import pytest

OLD_PUBLIC_NAMES = {
    "callbacks": ["BackupAndRestore", "GALAAccumulator", "PerClassMaxNormProjection", "WeightNormMonitor"],
    "constraints": ["PerClassMaxNorm"],
    "data": ["LongTailedData", "ShotSplits", "StreamingLongTailedData", "class_balanced_sampler",
             "completion_probabilities", "group_aware_completion", "imbalance_profile", "load_cifar_lt",
             "load_digits_lt", "load_fashion_mnist_lt", "load_imagenet_lt", "load_inaturalist", "load_places_lt",
             "load_waymo_depth", "long_tailed", "progressive_class_probabilities", "progressively_balanced_sampler",
             "shot_splits", "synthetic_depth_scenes", "two_gaussians", "with_ground_truth_mask"],
    "distribute": ["prepare_multi_worker_fit"],
    "dual_phase": ["ExemplarMemoryBank", "FrequencySplit", "expand_classifier", "split_by_frequency"],
    "gbg": ["ClassGrouping", "group_by_similarity", "group_classes"],
    "layers": ["CosineClassifier", "GALAStatistics", "PredictionRebalancing", "tune_tau"],
    "losses": ["ClassBalancedCrossentropy", "GALALoss", "IntraClassMarginLoss", "MaskedL1", "MemoryRetentiveLoss",
               "class_balanced_weights"],
    "metrics": ["BinnedMeanRelativeError", "PerClassAccuracy", "ShotAccuracy"],
    "models": ["depth_unet", "mlp", "resnet32", "resnet50", "resnext50"],
    "ops": ["min_norm_weights"],
    "optimizers": ["GBGOptimizer", "LinearWarmup"],
    "training": ["DualPhaseTraining", "GBGMixin", "GBGModel", "GradTailActivation", "GradTailMixin", "GradTailModel",
                 "GradTailSigmoid", "GradTailWeightLogger", "PatchStrategy", "RandomPatches", "decoupled_weight_decay",
                 "gradtail_depth", "gradtail_scores", "retrain_classifier", "tau_normalize", "tune_weight_decay"],
}

# The method folders moved so far and the public-face path of each of their names: the two must be one object
# (a re-export, not a copy), so `isinstance` checks and `keras.saving` registrations agree whichever path is used.
METHOD_HOMES = {
    "gala": {"GALALoss": "losses", "GALAStatistics": "layers", "GALAAccumulator": "callbacks",
             "PredictionRebalancing": "layers", "tune_tau": "layers"},
    "weight_balancing": {"PerClassMaxNorm": "constraints", "PerClassMaxNormProjection": "callbacks",
                         "WeightNormMonitor": "callbacks", "decoupled_weight_decay": "training",
                         "tune_weight_decay": "training", "retrain_classifier": "training",
                         "tau_normalize": "training"},
    "dual_phase": {"DualPhaseTraining": "training", "MemoryRetentiveLoss": "losses",
                   "IntraClassMarginLoss": "losses"},
    "gbg": {"GBGMixin": "training", "GBGModel": "training", "GBGOptimizer": "optimizers",
            "completion_probabilities": "data", "group_aware_completion": "data", "min_norm_weights": "ops"},
    "gradtail": {name: "training" for name in (
        "GradTailActivation", "GradTailMixin", "GradTailModel", "GradTailSigmoid", "GradTailWeightLogger",
        "PatchStrategy", "RandomPatches", "gradtail_depth", "gradtail_scores")},
}

# The module paths on main before the move -> where they went (listed here by hand, not read from the code, so a
# moved module that the package forgets to map fails).
MOVED_MODULES = {
    "keras_longtail.callbacks.gala_accumulator": "keras_longtail.gala.gala_accumulator",
    "keras_longtail.layers.gala_statistics": "keras_longtail.gala.gala_statistics",
    "keras_longtail.layers.prediction_rebalancing": "keras_longtail.gala.prediction_rebalancing",
    "keras_longtail.layers.tune_tau": "keras_longtail.gala.tune_tau",
    "keras_longtail.losses.gala_loss": "keras_longtail.gala.gala_loss",
    "keras_longtail.callbacks.per_class_max_norm_projection":
        "keras_longtail.weight_balancing.per_class_max_norm_projection",
    "keras_longtail.callbacks.weight_norm_monitor": "keras_longtail.weight_balancing.weight_norm_monitor",
    "keras_longtail.constraints.per_class_max_norm": "keras_longtail.weight_balancing.per_class_max_norm",
    "keras_longtail.training.decoupled_weight_decay": "keras_longtail.weight_balancing.decoupled_weight_decay",
    "keras_longtail.training.retrain_classifier": "keras_longtail.weight_balancing.retrain_classifier",
    "keras_longtail.training.tau_normalize": "keras_longtail.weight_balancing.tau_normalize",
    "keras_longtail.training.tune_weight_decay": "keras_longtail.weight_balancing.tune_weight_decay",
    "keras_longtail.losses.intra_class_margin_loss": "keras_longtail.dual_phase.intra_class_margin_loss",
    "keras_longtail.losses.memory_retentive_loss": "keras_longtail.dual_phase.memory_retentive_loss",
    "keras_longtail.training.dual_phase_training": "keras_longtail.dual_phase.dual_phase_training",
    "keras_longtail.training.gbg_mixin": "keras_longtail.gbg.gbg_mixin",
    "keras_longtail.training.gbg_model": "keras_longtail.gbg.gbg_model",
    "keras_longtail.optimizers.gbg_optimizer": "keras_longtail.gbg.gbg_optimizer",
    "keras_longtail.data.group_aware_completion": "keras_longtail.gbg.group_aware_completion",
    "keras_longtail.ops.min_norm_weights": "keras_longtail.gbg.min_norm_weights",
    "keras_longtail.training.gradtail_activation": "keras_longtail.gradtail.gradtail_activation",
    "keras_longtail.training.gradtail_depth": "keras_longtail.gradtail.gradtail_depth",
    "keras_longtail.training.gradtail_mixin": "keras_longtail.gradtail.gradtail_mixin",
    "keras_longtail.training.gradtail_model": "keras_longtail.gradtail.gradtail_model",
    "keras_longtail.training.gradtail_scores": "keras_longtail.gradtail.gradtail_scores",
    "keras_longtail.training.gradtail_sigmoid": "keras_longtail.gradtail.gradtail_sigmoid",
    "keras_longtail.training.gradtail_weight_logger": "keras_longtail.gradtail.gradtail_weight_logger",
    "keras_longtail.training.patch_strategy": "keras_longtail.gradtail.patch_strategy",
    "keras_longtail.training.random_patches": "keras_longtail.gradtail.random_patches",
}

CASES = [(namespace, name) for namespace, names in OLD_PUBLIC_NAMES.items() for name in names]


@pytest.mark.parametrize("namespace,name", CASES, ids=[f"{namespace}.{name}" for namespace, name in CASES])
def test_old_public_path_imports(namespace, name):
    module = importlib.import_module(f"keras_longtail.{namespace}")
    assert name in module.__all__, f"keras_longtail.{namespace}.__all__ lost {name!r}"
    exec(f"from keras_longtail.{namespace} import {name}", {})  # the `from ... import` form users write


def test_old_paths_are_the_namespaces_of_keras_longtail():
    import keras_longtail

    for namespace in OLD_PUBLIC_NAMES:
        assert namespace in keras_longtail.__all__, namespace
        assert getattr(keras_longtail, namespace) is importlib.import_module(f"keras_longtail.{namespace}")


@pytest.mark.parametrize("method", sorted(METHOD_HOMES))
def test_method_folder_and_public_face_export_the_same_object(method):
    home = importlib.import_module(f"keras_longtail.{method}")
    for name, namespace in METHOD_HOMES[method].items():
        assert name in home.__all__, f"keras_longtail.{method}.__all__ misses {name!r}"
        public = getattr(importlib.import_module(f"keras_longtail.{namespace}"), name)
        assert getattr(home, name) is public, f"keras_longtail.{method}.{name} is not keras_longtail.{namespace}.{name}"
        assert public.__module__.startswith(f"keras_longtail.{method}."), (
            f"keras_longtail.{namespace}.{name} is defined in {public.__module__}, not in keras_longtail/{method}/")


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_a_moved_module_path_raises_an_error_naming_its_new_path(old):
    new = MOVED_MODULES[old]
    importlib.import_module(new)
    with pytest.raises(ModuleNotFoundError, match=re.escape(f"{old} moved to {new}")):
        importlib.import_module(old)
    with pytest.raises(ModuleNotFoundError, match=re.escape(new)):
        exec(f"from {old} import *", {})  # the statement users wrote


def test_the_moved_module_finder_shadows_nothing():
    """Unmoved modules import as before, and an unknown path still gets Python's own error."""
    import keras_longtail.losses.masked_l1  # noqa: F401  (never moved)

    with pytest.raises(ModuleNotFoundError) as error:
        importlib.import_module("keras_longtail.losses.no_such_module")
    assert "moved" not in str(error.value)
