"""Layers for long-tailed learning."""

from keras_longtail.layers.prediction_rebalancing import PredictionRebalancing
from keras_longtail.layers.tune_tau import tune_tau

__all__ = ["PredictionRebalancing", "tune_tau"]
