"""Vector similarities s(a, b) shared by the memory bank (numpy) and the memory-retentive loss (keras.ops)."""

import numpy as np
from keras import ops

SIMILARITIES = ("cosine", "dot")
# Added under the square roots of norms so zero vectors (all-zero ReLU features) stay finite.
EPSILON = 1e-12


def numpy_similarity(a, b, similarity):
    """Pairwise s(a_i, b_j) of two float64 matrices, shape (len(a), len(b))."""
    if similarity == "cosine":
        a = a / np.sqrt(np.maximum(np.sum(a * a, axis=-1, keepdims=True), EPSILON))
        b = b / np.sqrt(np.maximum(np.sum(b * b, axis=-1, keepdims=True), EPSILON))
    return a @ b.T


def ops_similarity(a, b, similarity):
    """Pairwise s(a_i, b_j) in keras.ops, shape (len(a), len(b))."""
    if similarity == "cosine":
        a = a * ops.rsqrt(ops.maximum(ops.sum(a * a, axis=-1, keepdims=True), EPSILON))
        b = b * ops.rsqrt(ops.maximum(ops.sum(b * b, axis=-1, keepdims=True), EPSILON))
    return ops.matmul(a, ops.transpose(b))
