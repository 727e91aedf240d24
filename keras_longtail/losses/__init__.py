"""Losses for long-tailed learning."""

from keras_longtail.losses.gala_loss import GALALoss

__all__ = ["GALALoss"]
