"""Every public import path of the toolkit before the one-home-per-method layout (issue 18) still works.

The names below are the namespaces' `__all__` on main before the method folders (`gala/`, `weight_balancing/`,
`dual_phase/`, `gradtail/`, `gbg/`) took the code: `keras_longtail.losses.GALALoss` and the like are the public
face and re-export from the method folders. A name that moves home must stay importable from here (or raise an
error that names its new path, which this test then has to list explicitly).
"""

import importlib

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
