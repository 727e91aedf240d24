"""Metrics for long-tailed evaluation."""

from keras_longtail.metrics.per_class_accuracy import PerClassAccuracy
from keras_longtail.metrics.shot_accuracy import ShotAccuracy

__all__ = ["PerClassAccuracy", "ShotAccuracy"]
