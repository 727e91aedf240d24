"""Choosing τ of `PredictionRebalancing` on a validation set."""

import numpy as np
from keras import ops

from keras_longtail._internal import validation as _validation
from keras_longtail.gala.prediction_rebalancing import PredictionRebalancing
from keras_longtail.gala.prediction_rebalancing import _as_probability_matrix

DEFAULT_TAUS = tuple(round(0.1 * i, 1) for i in range(21))  # 0.0, 0.1, ..., 2.0


def tune_tau(probabilities, labels, taus=DEFAULT_TAUS, reference=None, from_logits=False):
    """Chooses the τ of `PredictionRebalancing` that maximizes class-averaged accuracy.

    For each candidate τ the validation predictions are re-balanced with
    `PredictionRebalancing(tau)` and scored by the mean over classes (those
    present in `labels`) of the per-class accuracy, the `overall` of
    `ShotAccuracy`. By default the re-balancing is transductive over the
    validation set itself (how the paper applies it to a test set); with
    `reference`, the layer is adapted on those predictions instead (fitted mode).
    Ties go to the smallest τ.

    Args:
        probabilities: validation probabilities (logits with
            `from_logits=True`) of shape `(n, num_classes)`.
        labels: integer validation labels of shape `(n,)`.
        taus: candidate values, each >= 0. Defaults to 0.0, 0.1, ..., 2.0.
        reference: optional predictions of shape `(m, num_classes)` to adapt
            the layer on (fitted mode). Defaults to `None` (transductive).
        from_logits: whether `probabilities` and `reference` are logits.
            Defaults to `False`.

    Returns:
        A tuple `(tau, scores)`: the chosen τ and a dict mapping each candidate τ
        to its class-averaged accuracy.

    Example:

    >>> probabilities = np.array([[0.7, 0.3], [0.6, 0.4], [0.9, 0.1], [0.55, 0.45]])
    >>> tau, scores = tune_tau(probabilities, [0, 1, 0, 1], taus=[0.0, 1.0])
    >>> tau, scores
    (1.0, {0.0: 0.5, 1.0: 1.0})

    References:
        - Zhang et al., "Gradient-Aware Logit Adjustment Loss for Long-tailed
          Classifier", ICASSP 2024, arXiv:2403.09036 (Eq. 13).
    """
    probabilities = _as_probability_matrix(probabilities, from_logits, "probabilities")
    num_classes = probabilities.shape[-1]
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[-1] == 1:
        labels = labels[:, 0]
    if labels.shape != probabilities.shape[:1]:
        raise ValueError(
            f"Expected `labels` of shape ({probabilities.shape[0]},), one per row of `probabilities`. "
            f"Received shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or np.any(labels < 0) or np.any(labels >= num_classes):
        raise ValueError(
            f"Expected `labels` to be integers in [0, {num_classes}). Received: labels={labels!r}")
    taus = [_validation.check_float("taus", tau, minimum=0.0) for tau in taus]
    if not taus:
        raise ValueError(f"Expected at least one candidate in `taus`. Received: taus={taus!r}")
    if reference is not None:
        reference = _as_probability_matrix(reference, from_logits, "reference", num_classes)

    present = np.bincount(labels, minlength=num_classes) > 0
    scores = {}
    for tau in taus:
        layer = PredictionRebalancing(tau=tau)
        if reference is not None:
            layer.adapt(reference)
        predicted = ops.convert_to_numpy(layer(probabilities)).argmax(axis=-1)
        correct = np.bincount(labels, weights=predicted == labels, minlength=num_classes)
        total = np.bincount(labels, minlength=num_classes)
        scores[tau] = float(np.mean(correct[present] / total[present]))
    best = max(scores.values())
    return min(tau for tau, score in scores.items() if score == best), scores
