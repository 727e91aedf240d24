"""Choosing the weight decay λ by search over a validation score."""

import math

import numpy as np

from keras_longtail._internal import validation as _validation


def tune_weight_decay(fit_and_score, candidates=None, num_trials=8, low=1e-5, high=1e-1, seed=0):
    """Picks the weight decay λ whose trained model scores best on validation data.

    The weight-balancing paper's first finding is that tuning λ alone moves
    CIFAR-100-LT from 38.4 % to 46.1 %, and its optimum depends on the data set;
    it tunes λ by Bayesian optimization and names random search as the
    alternative. This is random search (or a grid): each candidate λ is passed
    to `fit_and_score(λ)`, which builds a fresh model with that weight decay,
    trains it and returns a validation score (higher is better); the best λ is
    returned with every score.

    Recipe:

    1. Hold out validation data with every class present — ideally balanced
       (the test distribution), e.g. a few examples per class taken from the
       training split (the paper, like most CIFAR-LT work, tunes on the test set,
       which inflates its numbers), and score class-averaged accuracy
       (`keras_longtail.metrics.ShotAccuracy`, the `overall` entry).
    2. Use the optimizer's decoupled `weight_decay` (Keras SGD/Adam); to start
       from a PyTorch value convert it with `decoupled_weight_decay`.
    3. Search on a log scale around the converted value, first coarsely (a
       decade apart), then finer around the best. Stage 1 trains the whole
       network per candidate, so use a short budget or a subset there; the
       second stage (`retrain_classifier`) costs seconds, so search it freely.

    Candidates are evaluated in the order given (random ones sorted ascending);
    ties go to the smallest λ.

    Args:
        fit_and_score: callable `λ -> float`, the validation score of a model
            trained with weight decay λ.
        candidates: values of λ to try, each >= 0. Defaults to `None`:
            `num_trials` values drawn log-uniformly from `[low, high]`.
        num_trials: number of random candidates, >= 1. Defaults to `8`.
        low: smallest random candidate, > 0. Defaults to `1e-5`.
        high: largest random candidate, > `low`. Defaults to `1e-1`.
        seed: seed of the random candidates. Defaults to `0`.

    Returns:
        A tuple `(best, scores)`: the chosen λ and a dict mapping each λ tried to
        its score.

    Example:

    ```python
    def fit_and_score(weight_decay):
        model = build_model()
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=weight_decay),
                      loss=..., metrics=[ShotAccuracy(class_counts)])
        model.fit(train, epochs=12, verbose=0)
        return model.evaluate(validation, return_dict=True)["acc_overall"]

    best, scores = tune_weight_decay(fit_and_score, [5e-4, 1e-3, 2e-3, 5e-3, 1e-2])
    ```

    >>> best, scores = tune_weight_decay(lambda wd: -abs(math.log10(wd) + 3), [1e-4, 1e-3, 1e-2])
    >>> best, scores
    (0.001, {0.0001: -1.0, 0.001: -0.0, 0.01: -1.0})

    References:
        - Alshammari et al., "Long-Tailed Recognition via Weight Balancing",
          CVPR 2022, arXiv:2203.14197 (Sec. 3.3, Fig. 4).
        - Bergstra and Bengio, "Random Search for Hyper-Parameter Optimization",
          JMLR 2012.
    """
    if not callable(fit_and_score):
        raise TypeError(f"Expected `fit_and_score` to be callable. Received: fit_and_score={fit_and_score!r}")
    if candidates is None:
        num_trials = _validation.check_int("num_trials", num_trials, minimum=1)
        low = _validation.check_float("low", low, minimum=0.0, min_inclusive=False)
        high = _validation.check_float("high", high, minimum=low, min_inclusive=False)
        exponents = np.random.default_rng(seed).uniform(math.log10(low), math.log10(high), size=num_trials)
        candidates = sorted(float(f"{10.0 ** e:.3g}") for e in exponents)
    else:
        if isinstance(candidates, (str, bytes)) or not hasattr(candidates, "__iter__"):
            raise TypeError(f"Expected `candidates` to be a sequence of numbers. Received: candidates={candidates!r}")
        candidates = [_validation.check_float("candidates", c, minimum=0.0) for c in candidates]
        if not candidates:
            raise ValueError(f"Expected at least one value in `candidates`. Received: candidates={candidates!r}")
    scores = {}
    for weight_decay in candidates:
        score = float(fit_and_score(weight_decay))
        if not math.isfinite(score):
            raise ValueError(
                f"Expected `fit_and_score` to return a finite score. Received {score} for weight_decay={weight_decay}")
        scores[weight_decay] = score
    best = max(scores.values())
    return min(wd for wd, score in scores.items() if score == best), scores
