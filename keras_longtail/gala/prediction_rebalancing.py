"""Post-hoc prediction re-balancing (GALA's "PN", paper Eq. 13)."""

import keras
import numpy as np
from keras import ops

from keras_longtail._internal import validation as _validation

# Rows of a probability matrix must sum to 1 within this tolerance.
ROW_SUM_TOLERANCE = 1e-3


def _assert_distribution(probabilities, argument):
    """In-graph check (TensorFlow backend) that each row is a probability distribution."""
    if keras.backend.backend() != "tensorflow":
        return probabilities
    import tensorflow as tf

    message = (f"Expected `{argument}` to hold probabilities: non-negative rows summing to 1 "
               "(pass from_logits=True for logits)")
    checks = [
        tf.debugging.assert_non_negative(probabilities, message=message),
        tf.debugging.assert_near(tf.reduce_sum(probabilities, axis=-1), tf.ones_like(probabilities[:, 0]),
                                 atol=ROW_SUM_TOLERANCE, rtol=0.0, message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(probabilities)


def _check_distribution_now(probabilities, argument):
    """Eager check with a `ValueError` (for `adapt` and `tune_tau`)."""
    if np.any(probabilities < 0) or np.any(np.abs(probabilities.sum(axis=-1) - 1.0) > ROW_SUM_TOLERANCE):
        worst = np.abs(probabilities.sum(axis=-1) - 1.0).max()
        raise ValueError(
            f"Expected `{argument}` to hold probabilities: non-negative rows summing to 1 "
            "(pass from_logits=True for logits). Received: minimum "
            f"{probabilities.min():.4g}, largest |row sum - 1| {worst:.4g}")


def _as_probability_matrix(values, from_logits, argument, num_classes=None):
    """`values` (array-like of shape (n, C)) as float32 numpy probabilities, checked."""
    values = np.asarray(ops.convert_to_numpy(values) if not isinstance(values, np.ndarray) else values)
    if values.ndim != 2 or values.shape[-1] < 2 or (num_classes is not None and values.shape[-1] != num_classes):
        expected = num_classes if num_classes is not None else "num_classes >= 2"
        raise ValueError(
            f"Expected `{argument}` of shape (n, {expected}). Received shape {values.shape}")
    values = values.astype("float32")
    if from_logits:
        values = ops.convert_to_numpy(ops.softmax(values, axis=-1))
    else:
        _check_distribution_now(values, argument)
    return values


@keras.saving.register_keras_serializable(package="keras_longtail")
class PredictionRebalancing(keras.layers.Layer):
    """Re-balances class probabilities by their column L1 norms over a set of predictions.

    For a matrix of predicted probabilities P = (p_bk) over B examples and K
    classes (paper Eq. 13):

    p̃_bk = p_bk / ‖p_·k‖₁^τ,    ‖p_·k‖₁ = Σ_b p_bk

    τ = 0 is the identity, τ = 1 plain column L1-normalization (the official
    CIFAR configs); classes that collect much probability mass (head classes) are
    scaled down, so the argmax moves toward the tail. Rows are not renormalized.

    Two modes:

    - transductive (until `adapt` is called): the norms come from the batch the
      layer is called on, the paper's form over a whole test set. Call it on all
      the predictions at once, e.g. `layer(model.predict(x_test))`; under
      `tf.distribute` each replica would normalize over its own part of a batch.
    - fitted (after `adapt(data)`): the norms come from held-out predictions, so
      single examples can be served; calling the layer on each example of the
      adapted set gives exactly the transductive result on that set. The norms
      are layer weights and are saved with the model.

    A class whose column norm is 0 gets 0 (never NaN). The layer computes in
    float32 whatever the dtype policy (sums over a large set overflow float16).

    Args:
        tau: exponent τ >= 0. Defaults to `1.0`.
        from_logits: whether the inputs are logits (a softmax is applied first)
            rather than probabilities. Defaults to `False`.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: probabilities (or logits with `from_logits=True`) of shape
            `(batch, num_classes)`. Probabilities must be non-negative with rows
            summing to 1 (checked on the TensorFlow backend).

    Returns:
        Re-balanced scores of the same shape; take their argmax.

    Example:

    ```python
    # transductive, over a whole test set (the paper's form)
    scores = PredictionRebalancing(tau=1.0, from_logits=True)(model.predict(x_test))
    # fitted on held-out predictions, then served one example at a time
    rebalancing = PredictionRebalancing(tau=1.0, from_logits=True)
    rebalancing.adapt(model.predict(x_val))
    serving = keras.Sequential([model, rebalancing])
    ```

    >>> layer = PredictionRebalancing(tau=1.0)
    >>> probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]], "float32")
    >>> np.round(ops.convert_to_numpy(layer(probabilities)), 3)
    array([[0.391, 0.143],
           [0.348, 0.286],
           [0.261, 0.571]], dtype=float32)
    >>> layer.adapt(probabilities)
    >>> np.round(ops.convert_to_numpy(layer(probabilities[2:])), 3)  # one example, fitted
    array([[0.261, 0.571]], dtype=float32)

    References:
        - Zhang et al., "Gradient-Aware Logit Adjustment Loss for Long-tailed
          Classifier", ICASSP 2024, arXiv:2403.09036 (Eq. 13).
    """

    def __init__(self, tau=1.0, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.tau = _validation.check_float("tau", tau, minimum=0.0)
        if not isinstance(from_logits, bool):
            raise TypeError(f"Expected `from_logits` to be a bool. Received: from_logits={from_logits!r}")
        self.from_logits = from_logits
        self.column_sums = None
        self.adapted = None

    def build(self, input_shape):
        num_classes = input_shape[-1]
        if len(input_shape) != 2 or num_classes is None or num_classes < 2:
            raise ValueError(
                "Expected inputs of shape (batch, num_classes) with num_classes >= 2. "
                f"Received: input_shape={tuple(input_shape)}")
        self.column_sums = self.add_weight(
            shape=(num_classes,), initializer="ones", dtype="float32", trainable=False, name="column_sums")
        self.adapted = self.add_weight(
            shape=(), initializer="zeros", dtype="float32", trainable=False, name="adapted")

    @property
    def is_adapted(self):
        """Whether `adapt` has set the column norms (fitted mode)."""
        return self.adapted is not None and bool(ops.convert_to_numpy(self.adapted) > 0.5)

    def _probabilities(self, inputs):
        # float32 whatever the dtype policy: column sums over a large set overflow float16.
        inputs = ops.cast(inputs, "float32")
        if self.from_logits:
            return ops.softmax(inputs, axis=-1)
        return _assert_distribution(inputs, "inputs")

    def call(self, inputs):
        num_classes = self.column_sums.shape[0]
        if len(inputs.shape) != 2 or inputs.shape[-1] != num_classes:
            raise ValueError(
                f"Expected inputs of shape (batch, {num_classes}): the layer was built (or adapted) on "
                f"{num_classes} classes. Received: inputs with shape {tuple(inputs.shape)}")
        probabilities = self._probabilities(inputs)
        if self.tau == 0.0:
            return probabilities
        batch_sums = ops.sum(probabilities, axis=0)
        fitted = ops.convert_to_tensor(self.adapted) > 0.5
        sums = ops.where(fitted, ops.convert_to_tensor(self.column_sums), batch_sums)
        return ops.divide_no_nan(probabilities, ops.power(sums, self.tau)[None, :])

    def adapt(self, data, steps=None):
        """Sets the column norms from held-out predictions (fitted mode).

        Args:
            data: probabilities (logits with `from_logits=True`) of shape
                `(n, num_classes)` as an array or tensor, or a `tf.data.Dataset`
                of such batches (or of `(predictions, labels)` tuples).
            steps: number of dataset batches to read. Defaults to `None` (all).
        """
        if steps is not None:
            steps = _validation.check_int("steps", steps, minimum=1)
        if hasattr(data, "as_numpy_iterator"):
            batches = data.take(steps) if steps is not None else data
            batches = (batch[0] if isinstance(batch, (tuple, list)) else batch
                       for batch in batches.as_numpy_iterator())
        else:
            batches = [data]
        num_classes = self.column_sums.shape[0] if self.built else None
        sums, count = None, 0
        for batch in batches:
            probabilities = _as_probability_matrix(batch, self.from_logits, "data", num_classes)
            num_classes = probabilities.shape[-1]
            batch_sums = probabilities.astype("float64").sum(axis=0)
            sums = batch_sums if sums is None else sums + batch_sums
            count += probabilities.shape[0]
        if not count:
            raise ValueError(f"Expected `data` to hold at least one prediction. Received: data={data!r}")
        if not self.built:
            self.build((None, num_classes))
        self.column_sums.assign(sums.astype("float32"))
        self.adapted.assign(1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"tau": self.tau, "from_logits": self.from_logits})
        return config
