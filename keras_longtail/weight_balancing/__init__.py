"""Weight balancing (Alshammari et al., "Long-Tailed Recognition via Weight Balancing", CVPR 2022, arXiv:2203.14197).

Weight balancing trains in two stages. Stage 1 is ordinary cross-entropy with a tuned weight decay
(`tune_weight_decay`; `decoupled_weight_decay` converts a PyTorch SGD value to Keras' decoupled `weight_decay`).
Stage 2, `retrain_classifier`, retrains only the classifier on frozen features with a class-balanced loss and the
per-class MaxNorm constraint θ_k ← min(1, δ/‖θ_k‖₂)·θ_k, applied inside the step (`PerClassMaxNorm` as a
`kernel_constraint`) or once per epoch as the paper's code does (`PerClassMaxNormProjection`).
`tau_normalize` is the post-hoc τ-normalization baseline (Kang et al., ICLR 2020) that the paper compares with,
and `WeightNormMonitor` records the per-class weight norms the paper plots. The same names are exported from the
Keras-style namespaces (`keras_longtail.constraints.PerClassMaxNorm`,
`keras_longtail.callbacks.PerClassMaxNormProjection`, `keras_longtail.callbacks.WeightNormMonitor`,
`keras_longtail.training.decoupled_weight_decay`, `keras_longtail.training.tune_weight_decay`,
`keras_longtail.training.retrain_classifier`, `keras_longtail.training.tau_normalize`).
"""

from keras_longtail.weight_balancing.decoupled_weight_decay import decoupled_weight_decay
from keras_longtail.weight_balancing.per_class_max_norm import PerClassMaxNorm
from keras_longtail.weight_balancing.per_class_max_norm_projection import PerClassMaxNormProjection
from keras_longtail.weight_balancing.retrain_classifier import retrain_classifier
from keras_longtail.weight_balancing.tau_normalize import tau_normalize
from keras_longtail.weight_balancing.tune_weight_decay import tune_weight_decay
from keras_longtail.weight_balancing.weight_norm_monitor import WeightNormMonitor

__all__ = [
    "PerClassMaxNorm",
    "PerClassMaxNormProjection",
    "WeightNormMonitor",
    "decoupled_weight_decay",
    "retrain_classifier",
    "tau_normalize",
    "tune_weight_decay",
]
