"""Metrics for long-tailed evaluation."""

from keras_longtail.metrics.binned_mean_relative_error import BinnedMeanRelativeError
from keras_longtail.metrics.per_class_accuracy import PerClassAccuracy
from keras_longtail.metrics.shot_accuracy import ShotAccuracy

__all__ = ["BinnedMeanRelativeError", "PerClassAccuracy", "ShotAccuracy"]
