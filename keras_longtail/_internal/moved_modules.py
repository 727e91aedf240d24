"""Module paths that moved to a method folder (issue 18): importing one raises an error that names the new path.

The public names did not move for users: `keras_longtail.losses.GALALoss` still works. What moved is the file,
so `from keras_longtail.losses.gala_loss import GALALoss` (a module path the API reference used to show) now
raises `ModuleNotFoundError` saying where the module went, instead of Python's bare "No module named ...". The
finder sits at the end of `sys.meta_path`: it is consulted only for the paths below, after every other finder
has found nothing, so it never shadows a module that exists.
"""

import importlib.abc
import sys

# old module path -> new module path. Extend when a module moves.
MOVED = {
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


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Raises, for a moved module path, a `ModuleNotFoundError` that names the new one."""

    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        namespace, method = fullname.rpartition(".")[0], new.rpartition(".")[0]
        raise ModuleNotFoundError(
            f"{fullname} moved to {new} (one folder per method). Import its public names from {namespace} "
            f"(unchanged) or {method}, e.g. `from {namespace} import ...`.", name=fullname)


def install():
    """Appends the finder to `sys.meta_path` once."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
