"""Training procedures built from ordinary `fit` calls."""

from keras_longtail.training.dual_phase_training import DualPhaseTraining

__all__ = ["DualPhaseTraining"]
