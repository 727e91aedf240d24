"""Training procedures that replace the train step or run several `fit` phases (TensorFlow backend)."""

from keras_longtail.dual_phase import DualPhaseTraining
from keras_longtail.gbg import GBGMixin
from keras_longtail.gbg import GBGModel
from keras_longtail.gradtail import GradTailActivation
from keras_longtail.gradtail import gradtail_depth
from keras_longtail.gradtail import GradTailMixin
from keras_longtail.gradtail import GradTailModel
from keras_longtail.gradtail import gradtail_scores
from keras_longtail.gradtail import GradTailSigmoid
from keras_longtail.gradtail import GradTailWeightLogger
from keras_longtail.gradtail import PatchStrategy
from keras_longtail.gradtail import RandomPatches
from keras_longtail.weight_balancing import decoupled_weight_decay
from keras_longtail.weight_balancing import retrain_classifier
from keras_longtail.weight_balancing import tau_normalize
from keras_longtail.weight_balancing import tune_weight_decay

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
