"""Gradient-Aware Logit Adjustment (GALA) loss."""

import keras
from keras import ops

from keras_longtail import _backend
from keras_longtail import _checks
from keras_longtail import _distribute
from keras_longtail import _validation

ACCUMULATIONS = ("paper", "official")


@keras.saving.register_keras_serializable(package="keras_longtail")
class GALALoss(keras.losses.Loss):
    """Gradient-Aware Logit Adjustment loss: softmax cross-entropy on logits shifted by gradient statistics.

    For an example i of class k with logits z_i, the loss is the cross-entropy of
    adjusted logits z'_i (paper Eq. 6, with exponents λ1, λ2 on the two terms):

    z'_ij = z_ij + λ1·log(θ_j + ε) − λ2·log(φ_k + ε)   for j ≠ k
    z'_ik = z_ik
    ℓ_i  = −log softmax(z'_i)_k

    θ_j is the accumulated positive gradient of class j's logit (from examples of
    class j) and φ_k the accumulated negative gradients produced by examples of
    class k on the other logits, both taken from the gradient of the loss with
    respect to the adjusted logits, ∂ℓ_i/∂z'_i = p'_i − e_k with
    p'_i = softmax(z'_i) (closed form: no extra gradient tape). Each call first
    computes the loss with the statistics of all previous steps, then adds the
    current batch (w_i is the sample weight, 1 by default):

    `accumulation="paper"` (default, per-example sums over every training example seen):

    θ_k ← θ_k + Σ_{i: y_i = k} w_i·(1 − p'_ik)
    φ_k ← φ_k + Σ_{i: y_i = k} w_i·Σ_{j ≠ k} p'_ij

    `accumulation="official"` (the public code, lt-project): gradients of the
    batch-mean loss, g_ij = w_i·|p'_ij − [j = k]| / B with B the global batch
    size, summed into running totals S that are re-added every step (θ_T =
    Σ_{t≤T} Σ_{s≤t} g_s, a cumulative of the cumulative):

    S^θ_k ← S^θ_k + Σ_{i: y_i = k} g_ik,    θ ← θ + S^θ
    S^φ_k ← S^φ_k + Σ_{i: y_i = k} Σ_{j ≠ k} g_ij,    φ ← φ + S^φ

    and, as in that code, the adjustment is added to every logit including the
    target (z'_ij = z_ij + λ1·log(θ_j + ε) − λ2·log(φ_k + ε) for all j), so the
    λ2 term cancels in the softmax.

    For softmax cross-entropy Σ_{j≠k} p'_ij = 1 − p'_ik, so φ = θ up to rounding
    and, with λ1 = λ2 = λ, both forms are logit-adjusted cross-entropy with the
    prior θ^λ: z'_ij = z_ij + λ·log(θ_j + ε). Equal statistics (for instance the
    zeros at the start) give plain cross-entropy when λ1 = λ2 (always, with
    `accumulation="official"`). With λ1 ≠ λ2 the paper form adds a margin
    (λ1 − λ2)·log(φ_k + ε) to the non-target logits of a class-k example, which
    depends on the scale of the statistics (here: per-example sums, so it grows
    with the number of examples seen).

    The statistics live in float32 variables (`theta`, `phi`), updated inside the
    train step with sums over the global batch: under `tf.distribute` each
    replica's contribution is all-reduced, so two replicas accumulate what one
    device does with the same global batch (up to float rounding); there is no
    host round-trip, so the step compiles with `jit_compile=True`. Create the
    loss inside `strategy.scope()`. Only the loss is adjusted: the model's outputs, and so
    `predict`, stay the plain logits. The loss updates the statistics whenever it
    is called while `accumulating` is 1 (the default); pass the `GALAAccumulator`
    callback to `fit` so that evaluation (validation data, `evaluate`) does not
    update them. The statistics are not part of the saved model: a reloaded model
    starts from zero statistics.

    Args:
        num_classes: number of classes, >= 2.
        lambda_1: exponent λ1 of the positive-gradient term θ, >= 0. Defaults to `1.0`.
        lambda_2: exponent λ2 of the negative-gradient term φ, >= 0. Defaults to `1.0`.
        epsilon: ε added inside the logarithms, > 0. Defaults to `1e-3`
            (the official code's value).
        accumulation: `"paper"` or `"official"`, see above. Defaults to `"paper"`.
        reduction: reduction of the per-example losses. Defaults to
            `"sum_over_batch_size"`.
        name: name of the loss. Defaults to `"gala_loss"`.
        dtype: dtype of the loss computation. Defaults to `None` (float32).

    Call arguments:
        y_true: integer labels of shape `(batch,)` or `(batch, 1)` in
            `[0, num_classes)`.
        y_pred: logits of shape `(batch, num_classes)`.
        sample_weight: optional per-example weights (they scale the loss and the
            accumulated gradients alike).

    Returns:
        The reduced loss (per-example losses with `reduction=None`).

    Example:

    ```python
    model.compile("sgd", loss=GALALoss(num_classes=10))
    model.fit(x, y, validation_data=(x_val, y_val),
              callbacks=[keras_longtail.callbacks.GALAAccumulator()])
    ```

    >>> loss = GALALoss(num_classes=3)
    >>> logits = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    >>> round(float(loss([0, 1], logits)), 4)  # zero statistics: cross-entropy
    0.3955
    >>> loss.theta.numpy().round(4)  # θ_k += 1 - p'_ik over the class-k examples
    array([0.213 , 0.4239, 0.    ], dtype=float32)
    >>> round(float(loss([0, 1], logits)), 4)  # now adjusted by log(θ + ε)
    0.2046

    References:
        - Zhang et al., "Gradient-Aware Logit Adjustment Loss for Long-tailed
          Classifier", ICASSP 2024, arXiv:2403.09036.
    """

    def __init__(
        self,
        num_classes,
        lambda_1=1.0,
        lambda_2=1.0,
        epsilon=1e-3,
        accumulation="paper",
        reduction="sum_over_batch_size",
        name="gala_loss",
        dtype=None,
    ):
        _backend.require_tensorflow_backend("GALALoss (its statistics are updated inside the train step)")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
        self.lambda_1 = _validation.check_float("lambda_1", lambda_1, minimum=0.0)
        self.lambda_2 = _validation.check_float("lambda_2", lambda_2, minimum=0.0)
        self.epsilon = _validation.check_float("epsilon", epsilon, minimum=0.0, min_inclusive=False)
        self.accumulation = _validation.check_choice("accumulation", accumulation, ACCUMULATIONS)

        def state(shape, variable_name, initializer="zeros"):
            # Updated from all-reduced values, so every replica holds the same value;
            # "only_first_replica" lets replicas assign it inside the step.
            return keras.Variable(
                initializer, shape=shape, dtype="float32", trainable=False,
                aggregation="only_first_replica", name=variable_name)

        self.theta = state((self.num_classes,), "theta")
        self.phi = state((self.num_classes,), "phi")
        self.accumulating = state((), "accumulating", initializer="ones")
        # The official accumulation keeps the running totals S^θ, S^φ (rows 0 and 1).
        self._running = state((2, self.num_classes), "running") if self.accumulation == "official" else None
        self._pending_sample_weight = None

    @property
    def variables(self):
        """The state: θ, φ, the running totals (official accumulation) and the `accumulating` flag."""
        variables = [self.theta, self.phi, self.accumulating]
        return variables + ([self._running] if self._running is not None else [])

    def reset_state(self):
        """Sets θ, φ (and the running totals) back to zero."""
        for variable in (self.theta, self.phi, self._running):
            if variable is not None:
                variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def adjusted_logits(self, y_true, y_pred):
        """The adjusted logits z' for labels `y_true` and logits `y_pred`, with the current θ, φ."""
        labels, logits = self._standardize(y_true, y_pred)
        return self._adjust(labels, logits)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # `Loss.call` does not receive the sample weights, which scale the gradients accumulated in `call`.
        self._pending_sample_weight = sample_weight
        try:
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        finally:
            self._pending_sample_weight = None

    def call(self, y_true, y_pred):
        self._check_distribution()
        labels, logits = self._standardize(y_true, y_pred)
        adjusted = self._adjust(labels, logits)  # reads θ, φ before this batch is added
        per_example = ops.logsumexp(adjusted, axis=-1) - ops.take_along_axis(
            adjusted, labels[:, None], axis=-1)[:, 0]
        self._accumulate(labels, adjusted, self._pending_sample_weight)
        return ops.cast(per_example, self.dtype)

    def _standardize(self, y_true, y_pred):
        logits = ops.convert_to_tensor(y_pred)
        if len(logits.shape) != 2 or logits.shape[-1] != self.num_classes:
            raise ValueError(
                f"Expected `y_pred` to be logits of shape (batch, {self.num_classes}). "
                f"Received shape {logits.shape}")
        labels = ops.convert_to_tensor(y_true)
        if len(labels.shape) == 2 and labels.shape[-1] == 1:
            labels = ops.squeeze(labels, axis=-1)
        if len(labels.shape) != 1:
            raise ValueError(
                "Expected `y_true` to be integer labels of shape (batch,) or (batch, 1). "
                f"Received shape {labels.shape}")
        labels = _checks.labels_in_range(ops.cast(labels, "int32"), self.num_classes, argument="y_true")
        return labels, ops.cast(logits, "float32")

    def _adjust(self, labels, logits):
        positive_term = self.lambda_1 * ops.log(ops.convert_to_tensor(self.theta) + self.epsilon)
        negative_term = self.lambda_2 * ops.log(ops.take(ops.convert_to_tensor(self.phi), labels) + self.epsilon)
        adjustment = positive_term[None, :] - negative_term[:, None]
        if self.accumulation == "paper":
            # Eq. 6: the target logit is not adjusted.
            adjustment = adjustment * (1.0 - ops.one_hot(labels, self.num_classes, dtype="float32"))
        return logits + adjustment

    def _accumulate(self, labels, adjusted, sample_weight):
        one_hot = ops.one_hot(labels, self.num_classes, dtype="float32")
        probabilities = ops.stop_gradient(ops.softmax(adjusted, axis=-1))
        magnitude = ops.abs(probabilities - one_hot)  # |∂ℓ_i/∂z'_i|
        if sample_weight is not None:
            weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            magnitude = magnitude * ops.broadcast_to(weights, ops.shape(magnitude[:, 0]))[:, None]
        positive = ops.sum(magnitude * one_hot, axis=-1)  # (batch,): gradient on the target logit
        negative = ops.sum(magnitude * (1.0 - one_hot), axis=-1)  # (batch,): on the other logits
        # Per-class sums over the batch (rows θ, φ), then over the replicas in one all-reduce.
        sums = ops.stack([ops.sum(one_hot * positive[:, None], axis=0),
                          ops.sum(one_hot * negative[:, None], axis=0)])
        if self.accumulation == "official":
            # Gradient of the mean over the global batch: divide by the global batch size.
            count = ops.cast(ops.shape(labels)[0], "float32")
            packed = _distribute.cross_replica_sum(ops.concatenate([ops.reshape(sums, (-1,)), count[None]]))
            delta = ops.reshape(packed[:-1], (2, self.num_classes)) / packed[-1]
        else:
            delta = _distribute.cross_replica_sum(sums)
        delta = delta * ops.convert_to_tensor(self.accumulating)
        if self.accumulation == "official":
            running = ops.convert_to_tensor(self._running) + delta
            self._running.assign(running)
            delta = running * ops.convert_to_tensor(self.accumulating)
        self.theta.assign_add(delta[0])
        self.phi.assign_add(delta[1])

    def _check_distribution(self):
        tf = _backend.import_tensorflow()
        if tf.distribute.has_strategy():
            strategy = tf.distribute.get_strategy()
            if not strategy.extended.variable_created_in_scope(self.theta.value):
                raise ValueError(
                    "GALALoss keeps its statistics in variables, which must belong to the "
                    "tf.distribute strategy the model trains with: construct GALALoss inside "
                    f"`strategy.scope()`. Received: a loss created outside the scope of {strategy!r}")

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "lambda_1": self.lambda_1,
            "lambda_2": self.lambda_2,
            "epsilon": self.epsilon,
            "accumulation": self.accumulation,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self.dtype,
        }
