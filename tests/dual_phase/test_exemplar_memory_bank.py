import json

import numpy as np
import pytest

from keras_longtail.dual_phase import ExemplarMemoryBank


def _reference(features, m, similarity="cosine"):
    """Eq. 2-5 written out for one class (float64), argmax over the examples not chosen yet."""
    def s(a, b):
        if similarity == "cosine":
            return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        return a @ b

    c = features.mean(axis=0)
    chosen = [int(np.argmax([s(c, x) for x in features]))]  # Eq. 2
    while len(chosen) < m:
        memory = features[chosen]
        logits = np.array([s(c, row) for row in memory])
        p = np.exp(logits) / np.exp(logits).sum()  # Eq. 3
        z = p @ memory  # Eq. 4
        delta = c - z
        scores = [s(c + delta, x) if i not in chosen else -np.inf for i, x in enumerate(features)]
        chosen.append(int(np.argmax(scores)))  # Eq. 5
    return chosen


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_selection_matches_numpy_reference(similarity):
    rng = np.random.default_rng(0)
    labels = np.repeat([2, 0, 1], [40, 25, 12])
    rng.shuffle(labels)
    features = rng.normal(size=(len(labels), 6)) + labels[:, None] * 0.5
    bank = ExemplarMemoryBank(memory_size=8, similarity=similarity).fit(features, labels)
    assert sorted(bank.indices_) == [0, 1, 2]
    for k in (0, 1, 2):
        rows = np.flatnonzero(labels == k)
        expected = [int(rows[i]) for i in _reference(features[rows], 8, similarity)]
        assert bank.indices_[k] == expected
        assert len(set(expected)) == 8
        np.testing.assert_allclose(bank.features_[k], features[expected], rtol=1e-6)
    if similarity == "cosine":
        # The first pick is the closest to the prototype; the rest is not the plain ranking.
        rows = np.flatnonzero(labels == 2)
        centre = features[rows].mean(axis=0)
        closest = list(rows[np.argsort(-features[rows] @ centre / np.linalg.norm(features[rows], axis=1))][:8])
        assert bank.indices_[2][0] == closest[0] and bank.indices_[2] != closest


def test_classes_argument_and_exemplar_indices():
    features = np.arange(20.0).reshape(10, 2) + 1.0
    labels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    bank = ExemplarMemoryBank(memory_size=2).fit(features, labels, classes=[2, 0])
    assert sorted(bank.indices_) == [0, 2]
    assert all(labels[i] == k for k, rows in bank.indices_.items() for i in rows)
    assert bank.exemplar_indices().tolist() == sorted(bank.indices_[0] + bank.indices_[2])


def test_json_round_trip():
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(30, 3)), np.repeat([0, 1], 15)
    bank = ExemplarMemoryBank(memory_size=3, similarity="dot").fit(features, labels)
    revived = ExemplarMemoryBank.from_json(bank.to_json())
    assert revived.get_config() == {"memory_size": 3, "similarity": "dot"}
    assert revived.indices_ == bank.indices_ and revived.features_ is None
    with_features = ExemplarMemoryBank.from_json(bank.to_json(include_features=True))
    for k in (0, 1):
        np.testing.assert_allclose(with_features.features_[k], bank.features_[k])
    json.loads(bank.to_json(include_features=True))
    assert ExemplarMemoryBank.from_config(bank.get_config()).get_config() == bank.get_config()


def test_bad_input():
    with pytest.raises(ValueError, match="memory_size"):
        ExemplarMemoryBank(memory_size=4).fit(np.ones((5, 2)), [0, 0, 0, 1, 1])  # class 1 has 2
    with pytest.raises(ValueError, match="memory_size"):
        ExemplarMemoryBank(memory_size=0)
    with pytest.raises(ValueError, match="similarity"):
        ExemplarMemoryBank(similarity="euclid")
    with pytest.raises(ValueError, match="features"):
        ExemplarMemoryBank(memory_size=1).fit(np.ones((5, 2)), [0, 1])
    with pytest.raises(ValueError, match="fit"):
        ExemplarMemoryBank().to_json()
