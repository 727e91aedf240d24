"""Asynchronous dual-phase training: the class split, the exemplar memory bank, classifier expansion.

The method's losses and layer live in the Keras-style namespaces
(`keras_longtail.losses.IntraClassMarginLoss`, `keras_longtail.losses.MemoryRetentiveLoss`,
`keras_longtail.layers.CosineClassifier`); `keras_longtail.training.DualPhaseTraining`
ties everything together.
"""

from keras_longtail.dual_phase.exemplar_memory_bank import ExemplarMemoryBank
from keras_longtail.dual_phase.expand_classifier import expand_classifier
from keras_longtail.dual_phase.split_by_frequency import FrequencySplit
from keras_longtail.dual_phase.split_by_frequency import split_by_frequency

__all__ = ["ExemplarMemoryBank", "FrequencySplit", "expand_classifier", "split_by_frequency"]
