"""GALA, gradient-aware logit adjustment (Zhang et al., ICASSP 2024, arXiv:2403.09036).

GALA trains with softmax cross-entropy on logits shifted by the accumulated positive (θ) and negative (φ)
gradients of each class (`GALALoss`, paper Eq. 6), and at test time re-balances the predicted probabilities by
their column norms (`PredictionRebalancing`, the paper's "PN", Eq. 13, with τ chosen by `tune_tau`). The
statistics live in the loss by default (`model.compile(loss=GALALoss(...))`) or, to be saved with the model and
restored by Keras' `BackupAndRestore`, in a `GALAStatistics` layer on the logits; the `GALAAccumulator` callback
keeps them to the training batches. The same names are exported from the Keras-style namespaces
(`keras_longtail.losses.GALALoss`, `keras_longtail.layers.GALAStatistics`, `keras_longtail.layers.PredictionRebalancing`,
`keras_longtail.layers.tune_tau`, `keras_longtail.callbacks.GALAAccumulator`).
"""

from keras_longtail.gala.gala_accumulator import GALAAccumulator
from keras_longtail.gala.gala_loss import GALALoss
from keras_longtail.gala.gala_statistics import GALAStatistics
from keras_longtail.gala.prediction_rebalancing import PredictionRebalancing
from keras_longtail.gala.tune_tau import tune_tau

__all__ = ["GALAAccumulator", "GALALoss", "GALAStatistics", "PredictionRebalancing", "tune_tau"]
