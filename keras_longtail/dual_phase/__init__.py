"""Asynchronous dual-phase training ("Asynchronous Modeling: A Dual-Phase Perspective for Long-Tailed Recognition",
ICLR 2021 submission, OpenReview, §3.2 and Algorithm 1).

Phase I trains the backbone on the data-rich classes only (`split_by_frequency`); between the phases an
`ExemplarMemoryBank` keeps a few exemplars per head class; phase II expands the classifier to every class
(`expand_classifier`) and trains on the tail classes plus the exemplars with the intra-class margin loss
(`IntraClassMarginLoss`) and the memory-retentive graph-matching loss (`MemoryRetentiveLoss`) against the frozen
phase-I features. `DualPhaseTraining` ties the pieces into two ordinary `fit` calls. The losses and the training
procedure are also exported from the Keras-style namespaces (`keras_longtail.losses.IntraClassMarginLoss`,
`keras_longtail.losses.MemoryRetentiveLoss`, `keras_longtail.training.DualPhaseTraining`); the cosine classifier
it uses is `keras_longtail.layers.CosineClassifier`.
"""

from keras_longtail.dual_phase.dual_phase_training import DualPhaseTraining
from keras_longtail.dual_phase.exemplar_memory_bank import ExemplarMemoryBank
from keras_longtail.dual_phase.expand_classifier import expand_classifier
from keras_longtail.dual_phase.intra_class_margin_loss import IntraClassMarginLoss
from keras_longtail.dual_phase.memory_retentive_loss import MemoryRetentiveLoss
from keras_longtail.dual_phase.split_by_frequency import FrequencySplit
from keras_longtail.dual_phase.split_by_frequency import split_by_frequency

__all__ = [
    "DualPhaseTraining",
    "ExemplarMemoryBank",
    "FrequencySplit",
    "IntraClassMarginLoss",
    "MemoryRetentiveLoss",
    "expand_classifier",
    "split_by_frequency",
]
