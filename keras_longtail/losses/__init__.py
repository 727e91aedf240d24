"""Losses for long-tailed learning."""

from keras_longtail.losses.class_balanced_crossentropy import ClassBalancedCrossentropy
from keras_longtail.losses.class_balanced_weights import class_balanced_weights
from keras_longtail.gala.gala_loss import GALALoss
from keras_longtail.dual_phase.intra_class_margin_loss import IntraClassMarginLoss
from keras_longtail.losses.masked_l1 import MaskedL1
from keras_longtail.dual_phase.memory_retentive_loss import MemoryRetentiveLoss

__all__ = [
    "ClassBalancedCrossentropy",
    "GALALoss",
    "IntraClassMarginLoss",
    "MaskedL1",
    "MemoryRetentiveLoss",
    "class_balanced_weights",
]
