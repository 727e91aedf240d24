import numpy as np
import pytest

from keras_longtail.gala import tune_tau


def _balanced_accuracy(probabilities, labels, tau, sums):
    predicted = (probabilities / sums[None, :] ** tau).argmax(axis=1)
    return np.mean([np.mean(predicted[labels == k] == k) for k in np.unique(labels)])


def _validation_set(seed=0, n=300, num_classes=4):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), n // num_classes)  # balanced, as a test set
    logits = rng.normal(size=(len(labels), num_classes)) + np.linspace(1.5, -1.5, num_classes)  # head bias
    logits[np.arange(len(labels)), labels] += 1.5
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return logits, probabilities, labels


def test_scores_match_numpy_and_best_tau_is_chosen():
    _, probabilities, labels = _validation_set()
    taus = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
    tau, scores = tune_tau(probabilities, labels, taus=taus)
    expected = {t: _balanced_accuracy(probabilities, labels, t, probabilities.sum(axis=0)) for t in taus}
    assert scores.keys() == expected.keys()
    for t in taus:
        assert scores[t] == pytest.approx(expected[t], abs=1e-9)
    assert scores[tau] == max(scores.values())
    assert tau > 0.0 and scores[tau] > scores[0.0]  # re-balancing helps on head-biased predictions


def test_reference_set_logits_and_ties():
    logits, probabilities, labels = _validation_set(seed=1)
    reference = probabilities[::2]
    tau, scores = tune_tau(logits, labels, taus=[0.0, 1.0], reference=np.log(reference), from_logits=True)
    for t in (0.0, 1.0):
        assert scores[t] == pytest.approx(
            _balanced_accuracy(probabilities, labels, t, reference.sum(axis=0)), abs=1e-9)
    uniform = np.full((4, 2), 0.5)
    tau, scores = tune_tau(uniform, [0, 1, 0, 1], taus=[2.0, 1.0, 0.0])
    assert tau == 0.0 and len(set(scores.values())) == 1  # ties go to the smallest τ


def test_default_grid():
    _, probabilities, labels = _validation_set(seed=2, n=40)
    _, scores = tune_tau(probabilities, labels)
    assert list(scores) == [round(0.1 * i, 1) for i in range(21)]


def test_bad_input():
    probabilities = np.array([[0.6, 0.4], [0.3, 0.7]])
    with pytest.raises(ValueError, match="labels"):
        tune_tau(probabilities, [0, 2])
    with pytest.raises(ValueError, match="labels"):
        tune_tau(probabilities, [0, 1, 1])
    with pytest.raises(ValueError, match="taus"):
        tune_tau(probabilities, [0, 1], taus=[1.0, -1.0])
    with pytest.raises(ValueError, match="taus"):
        tune_tau(probabilities, [0, 1], taus=[])
    with pytest.raises(ValueError, match="probabilities"):
        tune_tau(probabilities * 2, [0, 1])
    with pytest.raises(ValueError, match="reference"):
        tune_tau(probabilities, [0, 1], reference=np.full((2, 3), 1 / 3))
