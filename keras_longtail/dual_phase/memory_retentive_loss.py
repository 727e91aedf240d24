"""The memory-retentive (graph-matching) loss of asynchronous dual-phase training (paper Eq. 6-8)."""

import keras
from keras import ops

from keras_longtail._internal import validation as _validation
from keras_longtail.dual_phase import _similarity

# Added to squared distances under the square root: finite gradients when a new feature equals an old one.
EPSILON = 1e-12


def _gather_replicas(values):
    """`values` concatenated over the replicas of a tf.distribute strategy (identity on one replica)."""
    if keras.backend.backend() != "tensorflow":
        return values
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_gather(values, axis=0)  # differentiable: gradients flow back to each replica


def _unit(features):
    """Rows scaled to unit L2 norm (a zero row stays zero)."""
    return features / ops.sqrt(ops.sum(ops.square(features), axis=-1, keepdims=True) + EPSILON)


@keras.saving.register_keras_serializable(package="keras_longtail")
class MemoryRetentiveLoss(keras.losses.Loss):
    """Graph matching between the features of a frozen old model and those of the model being trained.

    The features of a batch form two graphs: z_i from the old (phase-I) model,
    ẑ_j from the new one. Each old node is matched softly to the new nodes
    (paper Eq. 6-8):

    a_ji = exp(s(z_i, ẑ_j) / T) / Σ_j' exp(s(z_i, ẑ_j') / T)
    μ_i  = Σ_j a_ji ‖z_i − ẑ_j‖
    L    = Σ_i μ_i

    μ_i is the attention-weighted distance from z_i to the new graph. The paper
    has T = 1 (the default). The paper reads μ_i as the distance from z_i to
    its closest neighbour in the new graph, which is the limit T → 0: with
    T = 1 and cosine similarity (scores in [−1, 1]) the attention is nearly
    uniform over a batch, μ_i is close to the mean distance from z_i to all new
    features, and the loss is lower when the new features collapse onto the
    mean of the old ones than when they equal the old ones (it still falls along
    the straight path from any new features to the old ones, as tested). A
    smaller `temperature` (e.g. 0.1) sharpens the matching towards the closest
    neighbour. s is the cosine similarity by
    default (or the dot product); ‖·‖ is the Euclidean norm (computed as
    sqrt(‖·‖² + 1e-12), so gradients stay finite at zero distance). The old
    features are constants (no gradient flows into y_true).

    The graph spans the whole batch: under `tf.distribute` each replica matches
    its own old nodes against the new nodes of every replica (an all-gather,
    differentiable), so two replicas compute what one device does with the same
    global batch; there is no host round-trip, so it also runs with
    `jit_compile=True`. The per-example values are μ_i; the default
    `reduction="sum"` is Eq. 8 (it grows with the batch size);
    `"sum_over_batch_size"` averages instead. Dual-phase training weights it by
    λ = sqrt(C / C1) (Eq. 9).

    With `normalize=True` both feature sets are first scaled to unit L2 norm
    (z̄ = z/‖z‖, the normalized feature map a cosine classifier scores), so
    distances lie in [0, 2] whatever the scale of the features. On raw
    features Eq. 8's sum grows with the feature norms and the batch size;
    `DualPhaseTraining` normalizes by default (the runs behind that choice are
    in `docs/methods/dual-phase.md` and `benchmarks/README.md`).

    Args:
        similarity: `"cosine"` or `"dot"`. Defaults to `"cosine"`.
        temperature: T > 0 dividing the similarities. Defaults to `1.0` (the paper).
        normalize: compare L2-normalized features. Defaults to `False` (the
            paper's Eq. 7 on the features as they are).
        reduction: reduction of the per-node values μ_i. Defaults to `"sum"`.
        name: name of the loss. Defaults to `"memory_retentive_loss"`.
        dtype: dtype of the loss computation. Defaults to `None` (float32).

    Call arguments:
        y_true: old-model features z of shape `(batch, features)`.
        y_pred: new-model features ẑ of the same shape.
        sample_weight: optional per-example weights (of μ_i).

    Returns:
        The reduced loss (the μ_i with `reduction=None`).

    Example:

    ```python
    retentive = MemoryRetentiveLoss()
    value = retentive(old_model_features(x), new_model_features(x))
    ```

    >>> import numpy as np
    >>> loss = MemoryRetentiveLoss(reduction=None)
    >>> old = [[1.0, 0.0], [0.0, 2.0]]
    >>> np.asarray(loss(old, old)).round(4)  # a_ii = e / (e + 1); ‖z_1 − z_2‖ = √5
    array([0.6014, 0.6014], dtype=float32)

    References:
        - "Asynchronous Modeling: A Dual-Phase Perspective for Long-Tailed
          Recognition", ICLR 2021 submission (OpenReview, anonymous), Eq. 6-8.
    """

    def __init__(self, similarity="cosine", temperature=1.0, normalize=False, reduction="sum",
                 name="memory_retentive_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not isinstance(normalize, bool):
            raise TypeError(f"Expected `normalize` to be a bool. Received: normalize={normalize!r}")
        self.normalize = normalize
        self.similarity = _validation.check_choice("similarity", similarity, _similarity.SIMILARITIES)
        self.temperature = _validation.check_float("temperature", temperature, minimum=0.0, min_inclusive=False)

    def call(self, y_true, y_pred):
        old = ops.stop_gradient(ops.convert_to_tensor(y_true))
        new = ops.convert_to_tensor(y_pred)
        if len(old.shape) != 2 or len(new.shape) != 2 or old.shape[-1] != new.shape[-1]:
            raise ValueError("Expected `y_true` (old features) and `y_pred` (new features) of shape "
                             f"(batch, features). Received shapes {old.shape} and {new.shape}")
        new = _gather_replicas(new)
        if self.normalize:
            old, new = _unit(old), _unit(new)
        scores = _similarity.ops_similarity(old, new, self.similarity) / self.temperature
        attention = ops.softmax(scores, axis=-1)  # a_ji, indexed (i, j)
        difference = old[:, None, :] - new[None, :, :]
        distance = ops.sqrt(ops.sum(ops.square(difference), axis=-1) + EPSILON)
        return ops.sum(attention * distance, axis=-1)  # μ_i

    def get_config(self):
        return {"similarity": self.similarity, "temperature": self.temperature, "normalize": self.normalize,
                "reduction": self.reduction,
                "name": self.name, "dtype": self.dtype}
