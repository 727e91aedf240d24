"""Layers for long-tailed learning."""

from keras_longtail.layers.cosine_classifier import CosineClassifier
from keras_longtail.layers.padded_random_crop import PaddedRandomCrop
from keras_longtail.gala.gala_statistics import GALAStatistics
from keras_longtail.gala.prediction_rebalancing import PredictionRebalancing
from keras_longtail.gala.tune_tau import tune_tau

__all__ = ["CosineClassifier", "GALAStatistics", "PaddedRandomCrop", "PredictionRebalancing", "tune_tau"]
