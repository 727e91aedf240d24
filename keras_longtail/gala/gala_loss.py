"""Gradient-Aware Logit Adjustment (GALA) loss."""

import keras
from keras import ops

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import distribute as _distribute
from keras_longtail._internal import validation as _validation
from keras_longtail._internal import sparse_labels as _sparse_labels
from keras_longtail.gala import gala_statistics as _gala_statistics

ACCUMULATIONS = ("paper", "official")


class _Binding:
    """The `GALAStatistics` layer a `GALALoss` reads (not a Keras object: saving does not walk into it)."""

    __slots__ = ("layer",)

    def __init__(self):
        self.layer = None


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
    update them.

    Where the statistics live: by default in the loss (`statistics=None`, the
    one-line `model.compile(loss=GALALoss(...))`); they are then not part of the
    saved model (a `.keras` reload starts from zero statistics) and survive an
    interruption only with `keras_longtail.callbacks.BackupAndRestore`. With
    `statistics=layer`, a `keras_longtail.layers.GALAStatistics` layer placed on
    the logits holds them as model weights, so `.keras` files, weight
    checkpoints and Keras' own `keras.callbacks.BackupAndRestore` keep them; the
    numbers are the same. Use the layer whenever the statistics must be saved
    or resumed.

    Examples that do not count: an example with sample weight 0 adds nothing to
    θ, φ even if its logits are NaN. A batch whose update would be non-finite
    (NaN or infinite logits on a weighted example) leaves θ, φ and the running
    totals as they were; its loss is NaN, which Keras reports (and
    `keras.callbacks.TerminateOnNaN` stops on). Labels outside
    `[0, num_classes)` raise `InvalidArgumentError` in eager and graph
    execution; under `jit_compile=True` (XLA drops that check) their examples
    get a NaN loss, no gradient and no share of the statistics, so the reported
    loss is NaN rather than a silently finite number.

    Args:
        num_classes: number of classes, >= 2.
        lambda_1: exponent λ1 of the positive-gradient term θ, >= 0. Defaults to `1.0`.
        lambda_2: exponent λ2 of the negative-gradient term φ, >= 0. Defaults to `1.0`.
        epsilon: ε added inside the logarithms, > 0. Defaults to `1e-3`
            (the official code's value).
        accumulation: `"paper"` or `"official"`, see above. Defaults to `"paper"`.
        statistics: where θ, φ live: `None` (variables of the loss), a
            `GALAStatistics` layer of the model, or the name of one (what a
            config holds; the loss binds to the layer of that name that the
            model calls on its logits before the loss). Defaults to `None`.
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
        statistics=None,
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

        self.accumulating = state((), "accumulating", initializer="ones")
        # The layer is held out of sight of Keras' saving, which walks every attribute of a compiled loss: seen
        # there first, the layer's weights would be written under the loss instead of the model.
        self._binding, self._statistics_name = _Binding(), None
        if statistics is None:
            self._own = {"theta": state((self.num_classes,), "theta"), "phi": state((self.num_classes,), "phi")}
            if self.accumulation == "official":
                # The official accumulation keeps the running totals S^θ, S^φ (rows 0 and 1).
                self._own["running"] = state((2, self.num_classes), "running")
        elif isinstance(statistics, _gala_statistics.GALAStatistics):
            self._own = {}
            self._bind(statistics)
        elif isinstance(statistics, str) and statistics:
            self._own = {}
            self._statistics_name = statistics
        else:
            raise TypeError(
                "Expected `statistics` to be None, a GALAStatistics layer or the name of one. "
                f"Received: statistics={statistics!r}")
        self._pending_sample_weight = None

    def _bind(self, layer):
        if layer.built and layer.num_classes != self.num_classes:
            raise ValueError(
                f"Expected a GALAStatistics layer on {self.num_classes} classes (the loss's `num_classes`). "
                f"Received: statistics={layer.name!r} built on {layer.num_classes} classes")
        self._binding.layer, self._statistics_name = layer, layer.name

    def _statistics(self, bind=False):
        """The (θ, φ, running totals or None) variables, from the loss or its `GALAStatistics` layer.

        A loss given the layer by name binds to it in `call` (`bind=True`) only: the model has just called the
        layer on the logits. Elsewhere (an attribute read, Keras' saving walking the loss) it must not bind to
        whatever layer of that name ran last.
        """
        if self._statistics_name is None:
            return self._own["theta"], self._own["phi"], self._own.get("running")
        if self._binding.layer is None:
            if not bind:
                raise ValueError(
                    f"Expected the loss to be bound to its GALAStatistics layer {self._statistics_name!r}: a loss "
                    "given the layer by name (e.g. rebuilt from a `.keras` file) binds to it in its first training "
                    "step. Received: no step yet; read the statistics from the layer "
                    f"(`model.get_layer({self._statistics_name!r}).theta`)")
            layer = _gala_statistics.called_layer(self._statistics_name)
            if layer is None:
                raise ValueError(
                    f"Expected the model to call a GALAStatistics layer named {self._statistics_name!r} on its "
                    "logits before the loss (a GALALoss with `statistics` given by name binds to it). Received: "
                    f"no such layer called yet: statistics={self._statistics_name!r}")
            self._bind(layer)
        layer = self._binding.layer
        if not layer.built:
            raise ValueError(
                f"Expected the GALAStatistics layer {layer.name!r} to be built (called on the logits) before the "
                "loss reads it. Received: an unbuilt layer")
        if layer.num_classes != self.num_classes:
            self._bind(layer)  # raises the mismatch error
        return layer.theta, layer.phi, layer.running if self.accumulation == "official" else None

    @property
    def statistics(self):
        """The name of the `GALAStatistics` layer holding θ, φ (as in the config), or `None`."""
        return self._statistics_name

    @property
    def theta(self):
        """θ (num_classes,): the accumulated positive gradients (a variable of the loss or of its layer)."""
        return self._statistics()[0]

    @property
    def phi(self):
        """φ (num_classes,): the accumulated negative gradients (a variable of the loss or of its layer)."""
        return self._statistics()[1]

    @property
    def _running(self):
        return self._statistics()[2]

    @property
    def variables(self):
        """The loss's own state: θ, φ, the running totals (official accumulation, unless a `GALAStatistics`
        layer holds these three) and the `accumulating` flag."""
        variables = [self._own[key] for key in ("theta", "phi") if key in self._own] + [self.accumulating]
        return variables + ([self._own["running"]] if "running" in self._own else [])

    def reset_state(self):
        """Sets θ, φ (and the running totals) back to zero."""
        for variable in self._statistics():
            if variable is not None:
                variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def adjusted_logits(self, y_true, y_pred):
        """The adjusted logits z' for labels `y_true` and logits `y_pred`, with the current θ, φ."""
        labels, _, logits = self._standardize(y_true, y_pred)
        return self._adjust(labels, logits)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # `Loss.call` does not receive the sample weights, which scale the gradients accumulated in `call`.
        self._pending_sample_weight = sample_weight
        try:
            return super().__call__(y_true, y_pred, sample_weight=sample_weight)
        finally:
            self._pending_sample_weight = None

    def call(self, y_true, y_pred):
        self._statistics(bind=True)
        self._check_distribution()
        labels, valid, logits = self._standardize(y_true, y_pred)
        adjusted = self._adjust(labels, logits)  # reads θ, φ before this batch is added
        per_example = ops.logsumexp(adjusted, axis=-1) - ops.take_along_axis(
            adjusted, labels[:, None], axis=-1)[:, 0]
        self._accumulate(labels, valid, adjusted, self._pending_sample_weight)
        return ops.cast(_sparse_labels.nan_where_invalid(per_example, valid), self.dtype)

    def _standardize(self, y_true, y_pred):
        logits = ops.convert_to_tensor(y_pred)
        if len(logits.shape) != 2 or logits.shape[-1] != self.num_classes:
            raise ValueError(
                f"Expected `y_pred` to be logits of shape (batch, {self.num_classes}). "
                f"Received: y_pred with shape {tuple(logits.shape)}")
        labels = _sparse_labels.check_batch_sizes(_sparse_labels.squeeze_labels(y_true), logits)
        labels, valid = _sparse_labels.labels_and_validity(labels, self.num_classes)
        return labels, valid, ops.cast(logits, "float32")

    def _adjust(self, labels, logits):
        theta, phi, _ = self._statistics()
        positive_term = self.lambda_1 * ops.log(ops.convert_to_tensor(theta) + self.epsilon)
        negative_term = self.lambda_2 * ops.log(ops.take(ops.convert_to_tensor(phi), labels) + self.epsilon)
        adjustment = positive_term[None, :] - negative_term[:, None]
        if self.accumulation == "paper":
            # Eq. 6: the target logit is not adjusted.
            adjustment = adjustment * (1.0 - ops.one_hot(labels, self.num_classes, dtype="float32"))
        return logits + adjustment

    def _accumulate(self, labels, valid, adjusted, sample_weight):
        theta, phi, running = self._statistics()
        one_hot = ops.one_hot(labels, self.num_classes, dtype="float32")
        probabilities = ops.stop_gradient(ops.softmax(adjusted, axis=-1))
        magnitude = ops.abs(probabilities - one_hot)  # |∂ℓ_i/∂z'_i|
        counts = valid  # examples that contribute: in-range label and a non-zero weight
        if sample_weight is not None:
            weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            weights = ops.broadcast_to(weights, ops.shape(magnitude[:, 0]))
            magnitude = magnitude * weights[:, None]
            counts = ops.logical_and(counts, ops.not_equal(weights, 0.0))
        # `where`, not a product: a masked example's NaN times 0 would still be NaN.
        magnitude = ops.where(counts[:, None], magnitude, ops.zeros_like(magnitude))
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
        # A non-finite update (NaN or infinite logits on a weighted example) is skipped as a whole. The
        # all-reduced delta is the same on every replica, so every replica skips alike.
        update = ops.logical_and(ops.all(ops.isfinite(delta)), ops.convert_to_tensor(self.accumulating) > 0.5)
        delta = ops.where(update, delta, ops.zeros_like(delta))
        if self.accumulation == "official":
            totals = ops.convert_to_tensor(running) + delta
            running.assign(totals)
            delta = ops.where(update, totals, ops.zeros_like(totals))
        theta.assign_add(delta[0])
        phi.assign_add(delta[1])

    def _check_distribution(self):
        tf = _backend.import_tensorflow()
        if tf.distribute.has_strategy():
            strategy = tf.distribute.get_strategy()
            if not strategy.extended.variable_created_in_scope(self._statistics()[0].value):
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
            "statistics": self._statistics_name,
            "reduction": self.reduction,
            "name": self.name,
            "dtype": self.dtype,
        }
