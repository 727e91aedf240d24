"""Training procedures that replace the train step or run several `fit` phases (TensorFlow backend)."""

from keras_longtail.weight_balancing.decoupled_weight_decay import decoupled_weight_decay
from keras_longtail.dual_phase.dual_phase_training import DualPhaseTraining
from keras_longtail.training.gbg_mixin import GBGMixin
from keras_longtail.training.gbg_model import GBGModel
from keras_longtail.training.gradtail_activation import GradTailActivation
from keras_longtail.training.gradtail_depth import gradtail_depth
from keras_longtail.training.gradtail_mixin import GradTailMixin
from keras_longtail.training.gradtail_model import GradTailModel
from keras_longtail.training.gradtail_scores import gradtail_scores
from keras_longtail.training.gradtail_sigmoid import GradTailSigmoid
from keras_longtail.training.gradtail_weight_logger import GradTailWeightLogger
from keras_longtail.training.patch_strategy import PatchStrategy
from keras_longtail.training.random_patches import RandomPatches
from keras_longtail.weight_balancing.retrain_classifier import retrain_classifier
from keras_longtail.weight_balancing.tau_normalize import tau_normalize
from keras_longtail.weight_balancing.tune_weight_decay import tune_weight_decay

__all__ = [
    "DualPhaseTraining",
    "GBGMixin",
    "GBGModel",
    "GradTailActivation",
    "GradTailMixin",
    "GradTailModel",
    "GradTailSigmoid",
    "GradTailWeightLogger",
    "PatchStrategy",
    "RandomPatches",
    "decoupled_weight_decay",
    "gradtail_depth",
    "gradtail_scores",
    "retrain_classifier",
    "tau_normalize",
    "tune_weight_decay",
]
