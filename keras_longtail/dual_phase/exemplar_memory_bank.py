"""The exemplar memory bank of asynchronous dual-phase training (paper Eq. 2-5)."""

import json

import numpy as np

from keras_longtail._internal import validation as _validation
from keras_longtail.dual_phase import _similarity


class ExemplarMemoryBank:
    """Keeps `memory_size` representative examples per class, chosen around the class prototype.

    For class j with features X_j (rows x_i) and prototype c_j = mean(X_j), the
    exemplars m_1, ..., m_m are chosen one at a time (paper Eq. 2-5):

    m_1     = argmax_i s(c_j, x_i)
    p_i     = exp(s(c_j, m_i)) / Σ_i' exp(s(c_j, m_i'))      over the k selected
    z_{k+1} = Σ_i p_i m_i
    Δ       = c_j − z_{k+1}
    m_{k+1} = argmax_i s(c_j + Δ, x_i)

    so each new exemplar pulls the softmax-weighted centre of the selection back
    towards c_j. The argmax runs over the examples of class j not selected yet
    (the paper writes "x_i ∈ X_1"; without the exclusion an exemplar could be
    picked twice). s is the cosine similarity by default, or the dot product.
    The selection runs on the host in float64 numpy, between the two training
    phases, on features of the un-augmented training set (e.g. the phase-I
    model's `"features"` layer).

    Args:
        memory_size: exemplars per class, m >= 1 (the paper's best on Places-LT:
            10). Defaults to `10`.
        similarity: `"cosine"` or `"dot"`. Defaults to `"cosine"`.

    Attributes (after `fit`):
        indices_: dict class id -> list of the m selected row indices into the
            `features` passed to `fit`, in selection order.
        features_: dict class id -> (m, d) float32 array of their features.

    Example:

    >>> import numpy as np
    >>> features = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.5, 0.5], [3.0, 3.0]])
    >>> bank = ExemplarMemoryBank(memory_size=2).fit(features, [0, 0, 0, 1, 1])
    >>> bank.indices_  # class 0: [0.9, 0.1] is nearest its mean, then [0, 1] re-centres the pair
    {0: [1, 2], 1: [4, 3]}
    >>> bank.exemplar_indices().tolist()
    [1, 2, 3, 4]
    >>> ExemplarMemoryBank.from_json(bank.to_json()).indices_ == bank.indices_
    True

    References:
        - "Asynchronous Modeling: A Dual-Phase Perspective for Long-Tailed
          Recognition", ICLR 2021 submission (OpenReview, anonymous), §3.2.2.
    """

    def __init__(self, memory_size=10, similarity="cosine"):
        self.memory_size = _validation.check_int("memory_size", memory_size, minimum=1)
        self.similarity = _validation.check_choice("similarity", similarity, _similarity.SIMILARITIES)
        self.indices_ = None
        self.features_ = None

    def fit(self, features, labels, classes=None):
        """Selects the exemplars of each class in `classes` (default: every label present).

        Args:
            features: (n, d) array-like of features.
            labels: (n,) integer labels.
            classes: class ids to fill. Defaults to `None` (every class in `labels`).

        Returns:
            `self`.
        """
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels).reshape(-1)
        if features.ndim != 2 or len(features) != len(labels):
            raise ValueError(
                "Expected `features` of shape (n, d) and `labels` of shape (n,). Received shapes "
                f"{features.shape} and {labels.shape}")
        if classes is None:
            classes = sorted(int(k) for k in np.unique(labels))
        indices, selected_features = {}, {}
        for k in classes:
            k = int(k)
            rows = np.flatnonzero(labels == k)
            if self.memory_size > len(rows):
                raise ValueError(
                    f"Expected `memory_size` <= the size of every class to fill. Received: memory_size="
                    f"{self.memory_size}, but class {k} has {len(rows)} examples")
            chosen = self._select(features[rows])
            indices[k] = [int(rows[i]) for i in chosen]
            selected_features[k] = features[rows[chosen]].astype(np.float32)
        self.indices_, self.features_ = indices, selected_features
        return self

    def _select(self, class_features):
        prototype = class_features.mean(axis=0)
        target, chosen = prototype, []
        available = np.ones(len(class_features), dtype=bool)
        for _ in range(self.memory_size):
            scores = _similarity.numpy_similarity(target[None], class_features, self.similarity)[0]
            scores = np.where(available, scores, -np.inf)
            best = int(np.argmax(scores))
            chosen.append(best)
            available[best] = False
            memory = class_features[chosen]
            logits = _similarity.numpy_similarity(prototype[None], memory, self.similarity)[0]
            weights = np.exp(logits - logits.max())
            state = (weights / weights.sum()) @ memory  # z_{k+1}
            target = prototype + (prototype - state)  # c_j + Δ
        return np.asarray(chosen)

    def exemplar_indices(self):
        """All selected row indices, sorted, as an int64 array."""
        self._check_fitted()
        return np.asarray(sorted(i for rows in self.indices_.values() for i in rows), dtype=np.int64)

    def _check_fitted(self):
        if self.indices_ is None:
            raise ValueError("This ExemplarMemoryBank is not fitted yet: call `fit(features, labels)` first.")

    def get_config(self):
        """The constructor arguments (plain JSON)."""
        return {"memory_size": self.memory_size, "similarity": self.similarity}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def to_json(self, include_features=False):
        """A JSON string with the config, the selected indices and, optionally, their features."""
        self._check_fitted()
        state = {"config": self.get_config(),
                 "indices": {str(k): rows for k, rows in self.indices_.items()}}
        if include_features:
            state["features"] = {str(k): values.tolist() for k, values in self.features_.items()}
        return json.dumps(state)

    @classmethod
    def from_json(cls, text):
        """Rebuilds a fitted bank from `to_json` output (`features_` is `None` unless included)."""
        state = json.loads(text)
        bank = cls.from_config(state["config"])
        bank.indices_ = {int(k): [int(i) for i in rows] for k, rows in state["indices"].items()}
        if "features" in state:
            bank.features_ = {int(k): np.asarray(v, dtype=np.float32) for k, v in state["features"].items()}
        return bank
