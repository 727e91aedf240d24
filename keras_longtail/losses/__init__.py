"""Losses for long-tailed learning."""

from keras_longtail.losses.gala_loss import GALALoss
from keras_longtail.losses.intra_class_margin_loss import IntraClassMarginLoss
from keras_longtail.losses.memory_retentive_loss import MemoryRetentiveLoss

__all__ = ["GALALoss", "IntraClassMarginLoss", "MemoryRetentiveLoss"]
