"""Losses for long-tailed learning."""

from keras_longtail.losses.gala_loss import GALALoss
from keras_longtail.losses.masked_l1 import MaskedL1

__all__ = ["GALALoss", "MaskedL1"]
