"""Weight constraints for long-tailed learning."""

from keras_longtail.weight_balancing.per_class_max_norm import PerClassMaxNorm

__all__ = ["PerClassMaxNorm"]
