"""Callbacks for long-tailed learning."""

from keras_longtail.callbacks.backup_and_restore import BackupAndRestore
from keras_longtail.gala.gala_accumulator import GALAAccumulator
from keras_longtail.weight_balancing.per_class_max_norm_projection import PerClassMaxNormProjection
from keras_longtail.weight_balancing.weight_norm_monitor import WeightNormMonitor

__all__ = ["BackupAndRestore", "GALAAccumulator", "PerClassMaxNormProjection", "WeightNormMonitor"]
