"""Weight constraints for long-tailed learning."""

from keras_longtail.constraints.per_class_max_norm import PerClassMaxNorm

__all__ = ["PerClassMaxNorm"]
