"""Normalized-cut grouping of classes from their gradients."""

import numpy as np

from keras_longtail._internal import validation as _validation
from keras_longtail.gbg.class_grouping import ClassGrouping

LOBPCG_ABOVE = 2000


def group_by_similarity(class_gradients, num_groups=4, *, seed=None, keep_similarity=True):
    """Groups K classes by the cosine similarity of their gradients (GBG Alg. 1, lines 4-7).

    A_ij = <g_i, g_j> / (||g_i|| ||g_j||) (Eq. 7). The graph with affinity A + 1
    (non-negative, as in the GBG code) is cut into `num_groups` parts by spectral
    clustering (normalized cuts, Eq. 9): scikit-learn's
    `SpectralClustering(affinity="precomputed", assign_labels="cluster_qr")`, with the
    LOBPCG eigensolver above 2,000 classes (8,142 classes: ~23 s on 2 shared cores).
    Groups are numbered by their smallest class, so group 0 holds class 0.
    A class with a zero gradient has similarity 0 to every other class.

    Args:
        class_gradients: (K, D) array, one (average or sketched) gradient per class.
        num_groups: G in [1, K]. Defaults to 4 (the paper's choice).
        seed: random state of the spectral embedding. Defaults to `None`.
        keep_similarity: keep A in the result. Defaults to `True`.

    Returns:
        A `ClassGrouping`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(2, 50))
    >>> gradients = centres[[0, 1, 0, 1, 0, 1]] + 0.1 * rng.normal(size=(6, 50))
    >>> group_by_similarity(gradients, num_groups=2, seed=0).groups
    [0, 1, 0, 1, 0, 1]
    """
    gradients = np.asarray(class_gradients)
    if gradients.ndim != 2 or gradients.shape[0] == 0 or gradients.shape[1] == 0:
        raise ValueError("Expected `class_gradients` to be a non-empty (K, D) array. "
                         f"Received shape {gradients.shape}")
    num_classes = gradients.shape[0]
    num_groups = _validation.check_int("num_groups", num_groups, minimum=1, maximum=num_classes)
    gradients = gradients.astype(np.float64)
    if not np.all(np.isfinite(gradients)):
        raise ValueError("Expected finite values in `class_gradients`; received NaN or infinity.")
    norms = np.linalg.norm(gradients, axis=1, keepdims=True)
    unit = np.divide(gradients, norms, out=np.zeros_like(gradients), where=norms > 0)
    unit = unit.astype(np.float32)  # float32 product: half the time at thousands of classes
    similarity = unit @ unit.T
    np.clip(similarity, -1.0, 1.0, out=similarity)
    np.fill_diagonal(similarity, 1.0)
    if num_groups == 1:
        labels = np.zeros(num_classes, np.int64)
    elif num_groups == num_classes:
        labels = np.arange(num_classes)
    else:
        from sklearn.cluster import SpectralClustering

        affinity = similarity + np.float32(1.0)
        # sklearn's default eigensolver (ARPACK, shift-invert) factorizes the dense K x K Laplacian:
        # 26-50 s at 8,142 classes here; LOBPCG needs only products with it (~20 s).
        clustering = SpectralClustering(n_clusters=num_groups, affinity="precomputed",
                                        assign_labels="cluster_qr", random_state=seed,
                                        eigen_solver="lobpcg" if num_classes > LOBPCG_ABOVE else None)
        labels = clustering.fit_predict(affinity)
    labels = _renumber(labels)
    return ClassGrouping(labels.tolist(), num_groups=num_groups, similarity=similarity if keep_similarity else None)


def _renumber(labels):
    """Group ids in order of first appearance (group 0 holds class 0)."""
    order = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.array([order[int(label)] for label in labels], np.int64)
