"""Callbacks for long-tailed learning."""

from keras_longtail.callbacks.backup_and_restore import BackupAndRestore
from keras_longtail.callbacks.gala_accumulator import GALAAccumulator

__all__ = ["BackupAndRestore", "GALAAccumulator"]
