"""GradTail: gradient-agreement sample weighting as a `train_step` mixin (TensorFlow backend).

The step (Algorithm 1, the state and the metrics). The plan (layer selection,
path choice) is in `_plan`, the per-example gradient kernels in `_kernels`, the
weight histogram in `_weight_histogram`; gradients, loss scaling, loss logging
and serialization follow the train-step contract (`_internal.train_step`).
"""

import types

import keras
from keras import ops

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import distribute as _distribute
from keras_longtail._internal import validation as _validation
from keras_longtail._internal.train_step import TrainStepMixin
from keras_longtail.gradtail import _kernels
from keras_longtail.gradtail import _plan
from keras_longtail.gradtail._weight_histogram import WeightHistogram
from keras_longtail.gradtail.gradtail_activation import GradTailActivation
from keras_longtail.gradtail.gradtail_sigmoid import GradTailSigmoid
from keras_longtail.gradtail.patch_strategy import PatchStrategy

_TINY = 1e-12


class GradTailMixin(TrainStepMixin):
    """GradTail dynamic sample weighting for any `keras.Model` (TensorFlow backend).

    Mix it in before `keras.Model` (`class M(GradTailMixin, keras.Model)`); it
    replaces `train_step` with Algorithm 1 of the paper. For a batch of
    (pseudo-)examples x_i with per-example losses L_i and user weights s_i
    (`sample_weight`, 1 by default), let ∇_i = ∂L_i/∂w be the gradient of the
    unweighted loss with respect to the selected weights w. With the running
    mean gradient w̃, the running scale σ, pivot p, decay λ and the activation f:

    θ_i = ⟨∇_i, w̃⟩ / (‖∇_i‖·‖w̃‖)                        (cosine, in [−1, 1]; 0 if a norm is 0)
    σ_x = E_s[|θ_i|],   σ ← λσ + (1 − λ)σ_x
    w̃ ← λw̃ + (1 − λ)E_s[∇_i]
    q_i = f(|θ_i/σ − p|)                                  (with the updated σ; a constant)
    loss = Σ_i q_i·s_i·L_i / N + Σ model.losses

    E_s is the s-weighted mean over the global batch (all replicas), N the
    global number of (pseudo-)examples. The weighted loss trains every
    trainable weight of the model. θ uses w̃ before this step's update, q the
    σ after it (the paper's order).

    Warm-up (a deviation from the paper's zero-initialised EMAs, which would
    leave σ ≈ (1 − λ)σ_x and so q ≈ 1 for the first ~1/(1 − λ) steps): the
    first step trains unweighted (q = 1) and seeds w̃ = E_s[∇]; the second
    step seeds σ = σ_x and weights from then on; later steps use the EMAs.
    The state (w̃ per selected weight, σ and the step counter) lives in
    non-trainable variables `gradtail_mean_gradient_*`, `gradtail_sigma` and
    `gradtail_step`, saved with the model; batch means are all-reduced under
    `tf.distribute`, so two replicas keep the state one device does for the
    same global batch.

    Per-example gradients. Four paths give the same θ (they differ in cost
    and in the models they accept); `"auto"` picks the first that applies.

    - `gradient_path="dense"`: every selected weight is the kernel or bias of
      a `Dense` layer on 2-D inputs in a functional model with no batch
      normalization after it. ∇_i is never materialized: with the layer input
      a_i and the gradient δ_i of L_i with respect to the layer's
      pre-activation output, the kernel gradient is a_i δ_iᵀ, so
      ⟨∇_i, W̃⟩ = a_iᵀ W̃ δ_i, ‖∇_i‖ = ‖a_i‖·‖δ_i‖, and the bias gradient is
      δ_i; a_i and the layer outputs come from the same forward pass (an
      auxiliary functional model sharing the layers), δ_i from one backward
      pass of Σ_i L_i through the tail of the network.
    - `gradient_path="analytic"`: the same for `Dense` layers, extended to
      `Conv2D` layers (channels-last, no groups, no activation of their own)
      and to a batch normalization that alone consumes a selected
      convolution's output (conv → BN, as in ResNets). A convolution's
      per-example gradient is formed from its input patches P_i (im2col,
      `tf.image.extract_patches`, with a column of ones for the bias) and the
      output gradient G_i: ∇_i = P_iᵀ G_i when the examples are independent
      after it. A batch norm in training mode on the convolution output y
      (x̂ = (y − μ)/s over the M positions of the batch) makes every L_i depend
      on every example's y; the exact per-example gradient is then
      ∇_i = (γ/s) ⊙ [P_iᵀ G_i − S c_{1,i}ᵀ − A ⊙ c_{2,i}ᵀ], with G_i the
      gradient at the batch norm's output, S = Σ_{b,p} P_{b,p},
      A = Σ_{b,p} P_{b,p} x̂_{b,p}ᵀ, c_{1,i} = Σ_p G_{i,p} / M and
      c_{2,i} = Σ_p G_{i,p} ⊙ x̂_{i,p} / M (sums over the replica's batch, or
      over the global batch for `synchronized=True`). ⟨∇_i, w̃⟩, ‖∇_i‖² and
      E_s[∇_i] all come from these N × K × C per-example gradients
      (K = kernel height · width · input channels; 19 MB on ResNet-32's last
      conv at batch 128, but 2.4 GB on ResNet-50's last 3×3 conv at batch
      256, as much as `"jacobian"` holds). What is exact: on every
      model it accepts, the path equals `"jacobian"` up to float rounding,
      under the one assumption the `"dense"` path makes too — the layers
      after the selected ones (other than those batch norms) treat examples
      independently, as every built-in Keras layer but batch normalization
      does; a batch norm anywhere else after a selected layer makes the path
      refuse (and `"auto"` fall back to `"jacobian"`). Nothing is estimated.
      Ignoring the batch-norm coupling (P_iᵀ δ_i with δ the gradient at the
      convolution output) would be off by several times ‖∇_i‖ on ResNet-32.
      Forward mode (`tf.autodiff.ForwardAccumulator` with w̃ as tangent)
      gives the same dot products for any layer, but its tangents do not pass
      through `tf.distribute` all-reduces (a synchronized batch norm under
      `MirroredStrategy` silently got zero), its tracing is slow, and the
      norms need the per-example gradients anyway, so it is not used.
    - `gradient_path="jacobian"`: exact for any layer (and subclassed models):
      `tf.GradientTape.jacobian` of the per-example loss vector with respect
      to the selected weights (vectorized), costlier for large selections or
      convolutions: on ResNet-32's last two layers (batch 128, 2-core CPU)
      a step costs 3.4× a plain Keras step with `"jacobian"`, 1.04× with
      `"analytic"` (`python -m benchmarks.gradtail_overhead`).
    - `gradient_path="bias"` (what `"auto"` picks when neither `"dense"` nor
      `"analytic"` applies and every selected weight is the bias of a Dense
      or convolution layer with a linear or ReLU activation in a functional
      model with no batch normalization after it, e.g. the decoder biases of
      a depth network with `patches`) takes the exact per-example bias
      gradient Σ_s δ_i[s, :] from the gradient δ at the layer output; with K
      patches, δ for all B·K pseudo-examples comes from K vectorized backward
      passes of S_k = Σ_b L_bk (B times fewer than the jacobian path's):
      1.8× a plain step instead of 8.9× on the depth U-Net
      (`python -m benchmarks.gradtail_depth_overhead`).

    Losses. The per-example losses come from the compiled loss (a single
    output): `loss.call(y_true, y_pred)` for `keras.losses.Loss` objects,
    `loss(y_true, y_pred)` for functions. Elementwise losses of rank > 1
    (dense outputs) are averaged per example (weighted by a per-element
    `sample_weight`, e.g. a 0/1 ground-truth mask), or, with `patches`, per
    patch (each patch one pseudo-example; see `PatchStrategy`). The training
    objective is the mean over (pseudo-)examples, whatever the loss's own
    `reduction`.

    Metrics (in `fit`'s logs): `gradtail_mean_weight` (mean q),
    `gradtail_upweighted` (fraction with q above the midpoint (1 + f(0))/2)
    and `gradtail_sigma` (mean σ over the epoch's steps). A histogram of the
    weights per epoch is read by `GradTailWeightLogger`.

    Serialization: `get_config()` is Keras' config of the model plus
    `method_config()` (the arguments below, as plain JSON), and `from_config`
    rebuilds the model from it (`keras_longtail._internal.train_step`). A
    subclass with constructor arguments of its own adds them to `get_config()`,
    and passes GradTail's on through `**kwargs`.

    Args (keyword-only, before the model's own arguments):
        gradient_layers: layers (objects or names) whose trainable weights are
            selected. Defaults to `None`: with `gradient_variables` also
            `None`, the last two layers (in `model.layers` order, nested models
            expanded) that own a trainable `kernel`, with their kernels and
            biases.
        gradient_variables: individual trainable variables (objects or paths
            such as `"classifier/kernel"`), added to `gradient_layers`'s.
        pivot: p, finite. Defaults to `0.0`.
        decay: λ in [0, 1). Defaults to `0.99`.
        activation: a `GradTailActivation`. Defaults to
            `GradTailSigmoid(max_weight=3.0, sharpness=5.0)`.
        gradient_path: `"auto"`, `"dense"`, `"analytic"`, `"bias"` or
            `"jacobian"`. Defaults to `"auto"`: `"dense"` where it applies,
            else `"analytic"`, else `"bias"`, else `"jacobian"`.
        patches: a `PatchStrategy` grouping per-pixel losses into
            pseudo-examples, or `None`. Defaults to `None`.

    Example:

    ```python
    class MyModel(GradTailMixin, keras.Model):
        def __init__(self, **kwargs):
            super().__init__(gradient_layers=["hidden", "logits"], **kwargs)
            self.hidden = keras.layers.Dense(32, activation="relu", name="hidden")
            self.logits = keras.layers.Dense(10, name="logits")

        def call(self, x):
            return self.logits(self.hidden(x))

    model = MyModel()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=5)
    ```

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using
          Gradient-based Sample Weighting", arXiv:2201.05938 (2022).
    """

    def __init__(self, *args, gradient_layers=None, gradient_variables=None, pivot=0.0, decay=0.99,
                 activation=None, gradient_path="auto", patches=None, **kwargs):
        _backend.require_tensorflow_backend(f"{type(self).__name__} (GradTail's train_step)")
        pivot = _validation.check_float("pivot", pivot)
        decay = _validation.check_float("decay", decay, minimum=0.0, maximum=1.0, max_inclusive=False)
        if activation is None:
            activation = GradTailSigmoid()
        if isinstance(activation, dict):
            activation = keras.saving.deserialize_keras_object(activation)
        if not isinstance(activation, GradTailActivation):
            raise TypeError("Expected `activation` to be a GradTailActivation (e.g. GradTailSigmoid(max_weight=3.0)). "
                            f"Received: activation={activation!r}")
        gradient_path = _validation.check_choice("gradient_path", gradient_path, _plan.GRADIENT_PATHS)
        if isinstance(patches, dict):
            patches = keras.saving.deserialize_keras_object(patches)
        if patches is not None and not isinstance(patches, PatchStrategy):
            raise TypeError(f"Expected `patches` to be a PatchStrategy or None. Received: patches={patches!r}")
        layers_spec = _plan.as_list(gradient_layers)
        variables_spec = _plan.as_list(gradient_variables)
        super().__init__(*args, **kwargs)
        self.pivot = pivot
        self.decay = decay
        self.activation = activation
        self.gradient_path = gradient_path
        self.patches = patches
        # Plain Python holder: Keras must not track the specs, the auxiliary model or the plan.
        self._gradtail = types.SimpleNamespace(
            layers_spec=layers_spec, variables_spec=variables_spec, plan=None, state=None)
        self.gradtail_mean_weight = keras.metrics.Mean(name="gradtail_mean_weight")
        self.gradtail_upweighted = keras.metrics.Mean(name="gradtail_upweighted")
        self.gradtail_sigma_metric = keras.metrics.Mean(name="gradtail_sigma")
        self.gradtail_weight_histogram = WeightHistogram(float(activation.max_weight or 1.0))
        if self.built:
            self.gradtail_build()

    # ------------------------------------------------------------------ configuration
    method_config_keys = ("gradient_layers", "gradient_variables", "pivot", "decay", "activation", "gradient_path",
                          "patches")

    def gradtail_config(self):
        """The GradTail arguments as plain JSON: `method_config()` (kept for earlier callers)."""
        return self.method_config()

    def method_config(self):
        """The GradTail arguments as plain JSON (layer names, variable paths, serialized objects).

        Part of `get_config()` (the train-step contract); needs a built model.
        """
        self.gradtail_build()
        plan = self._gradtail.plan
        return {
            "gradient_layers": None if not plan.layer_names else list(plan.layer_names),
            "gradient_variables": None if not plan.extra_paths else list(plan.extra_paths),
            "pivot": self.pivot,
            "decay": self.decay,
            "activation": keras.saving.serialize_keras_object(self.activation),
            "gradient_path": self.gradient_path,
            "patches": None if self.patches is None else keras.saving.serialize_keras_object(self.patches),
        }

    @property
    def gradtail_variables(self):
        """The selected variables w whose per-example gradients GradTail compares."""
        self.gradtail_build()
        return list(self._gradtail.plan.variables)

    @property
    def gradtail_resolved_path(self):
        """`"dense"`, `"analytic"`, `"bias"` or `"jacobian"`: the per-example gradient path in use."""
        self.gradtail_build()
        return self._gradtail.plan.path

    @property
    def gradtail_mean_gradient(self):
        """The state w̃: one variable per selected variable."""
        self.gradtail_build()
        return list(self._gradtail.state.mean_gradient)

    @property
    def gradtail_sigma(self):
        """The state σ (scalar variable)."""
        self.gradtail_build()
        return self._gradtail.state.sigma

    @property
    def gradtail_step(self):
        """Number of GradTail training steps taken (scalar variable)."""
        self.gradtail_build()
        return self._gradtail.state.step

    @property
    def metrics(self):
        # The histogram is read by GradTailWeightLogger, not logged (it is a vector).
        return [m for m in super().metrics if m is not self.gradtail_weight_histogram]

    def build(self, input_shape=None):
        # Subclassed models: build the sublayers by a symbolic call (what Keras does for models without
        # `build`), then create the GradTail state here, before Keras locks the model's state.
        if not self.built and input_shape is not None:
            symbolic = keras.tree.map_shape_structure(lambda shape: keras.KerasTensor(shape), input_shape)
            self.compute_output_spec(symbolic)
        super().build(input_shape)
        if "_gradtail" in self.__dict__:  # functional models build inside `__init__`, before GradTail's setup
            self.gradtail_build(_building=True)

    def gradtail_build(self, _building=False):
        """Resolves the selected variables and creates the state (needs a built model); idempotent."""
        if self._gradtail.plan is not None:
            return
        if not (self.built or _building):
            raise ValueError(f"{type(self).__name__} must be built (called on data or `build()`) before "
                             "GradTail can select its variables.")
        spec = self._gradtail
        plan = _plan.resolve_plan(self, spec.layers_spec, spec.variables_spec, self.gradient_path, self.patches)
        with _distribute.model_scope(self):  # the variables must belong to the model's strategy
            state = types.SimpleNamespace()
            state.mean_gradient = [
                self.add_weight(shape=tuple(v.shape), initializer="zeros", dtype="float32", trainable=False,
                                aggregation="only_first_replica", name=f"gradtail_mean_gradient_{i}")
                for i, v in enumerate(plan.variables)]
            state.sigma = self.add_weight(shape=(), initializer="zeros", dtype="float32", trainable=False,
                                          aggregation="only_first_replica", name="gradtail_sigma")
            state.step = self.add_weight(shape=(), initializer="zeros", dtype="float32", trainable=False,
                                         aggregation="only_first_replica", name="gradtail_step")
        self._gradtail.plan = plan
        self._gradtail.state = state

    def make_train_function(self, force=False):
        self.gradtail_build()
        return super().make_train_function(force=force)

    def load_own_variables(self, store):
        if self.built:
            self.gradtail_build()
        return super().load_own_variables(store)

    # ------------------------------------------------------------------ the step
    def train_step(self, data):
        tf = _backend.import_tensorflow()
        self.gradtail_build()
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        trainable = self.trainable_weights
        with tf.GradientTape() as tape:
            inner, y_pred, values, pseudo_weights, captures = self._gradtail_record(
                x, y, sample_weight, training=True)
            with tape.stop_recording():
                weights, theta = self._gradtail_weights(inner, values, pseudo_weights, captures, update=True)
            weights = tf.stop_gradient(weights)
            count = _distribute.cross_replica_sum(tf.cast(tf.size(values), tf.float32))
            loss = tf.reduce_sum(weights * pseudo_weights * values) / count
            if self.losses:
                extra = tf.add_n([tf.reduce_sum(tf.cast(v, tf.float32)) for v in self.losses])
                loss = loss + extra / _distribute.num_replicas()
            scaled = self.step_scale_loss(loss)
        gradients = tape.gradient(scaled, trainable)
        self.step_apply_gradients(gradients, trainable)

        # Metrics: the logged loss is the global objective (not a per-replica share).
        self.step_log_loss(loss, x)
        valid = tf.cast(pseudo_weights > 0, tf.float32)
        midpoint = 0.5 * (1.0 + float(self.activation.max_weight or 1.0))
        self.gradtail_mean_weight.update_state(weights, sample_weight=valid)
        self.gradtail_upweighted.update_state(tf.cast(weights > midpoint, tf.float32), sample_weight=valid)
        self.gradtail_sigma_metric.update_state(self._gradtail.state.sigma)
        self.gradtail_weight_histogram.update_state(weights, valid)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _gradtail_record(self, x, y, sample_weight, training):
        """Forward pass and pseudo-example losses on a fresh tape: (tape, y_pred, values, weights, captures)."""
        tf = _backend.import_tensorflow()
        plan = self._gradtail.plan
        with tf.GradientTape() as inner:
            if plan.aux is not None:
                outputs = plan.aux(x, training=training)
                y_pred = outputs[0]
            else:
                y_pred, outputs = self(x, training=training), None
            values, pseudo_weights = self._gradtail_pseudo_examples(y, y_pred, sample_weight)
        captures = types.SimpleNamespace(outputs=outputs, training=bool(training))
        return inner, y_pred, values, pseudo_weights, captures

    def _gradtail_loss_values(self, y, y_pred):
        loss = self.loss
        if isinstance(loss, (list, tuple)) and len(loss) == 1:
            loss = loss[0]
        if isinstance(loss, dict) and len(loss) == 1:
            loss = next(iter(loss.values()))
        if loss is None or isinstance(loss, (list, tuple, dict)):
            raise ValueError(f"{type(self).__name__} needs one compiled loss for a single output. "
                             f"Received: loss={loss!r}")
        if isinstance(loss, str):
            loss = keras.losses.get(loss)
        if isinstance(y, (list, tuple)) and len(y) == 1:
            y = y[0]
        if isinstance(y_pred, (list, tuple)) and len(y_pred) == 1:
            y_pred = y_pred[0]
        if isinstance(loss, keras.losses.Loss):
            values = loss.call(y, y_pred)
        else:
            values = loss(y, y_pred)
        return ops.cast(values, "float32")

    def _gradtail_pseudo_examples(self, y, y_pred, sample_weight):
        """(pseudo-example losses L, weights s), both flat of length N."""
        tf = _backend.import_tensorflow()
        values = self._gradtail_loss_values(y, y_pred)
        rank = len(values.shape)
        if sample_weight is None:
            element_weight = tf.ones_like(values)
        else:
            element_weight = tf.cast(sample_weight, tf.float32)
            if len(element_weight.shape) == rank + 1 and element_weight.shape[-1] == 1:
                element_weight = tf.squeeze(element_weight, -1)
            while len(element_weight.shape) < rank:
                element_weight = element_weight[..., None]
            if len(element_weight.shape) == 2 and rank == 1:
                element_weight = tf.reshape(element_weight, [-1])
            element_weight = tf.broadcast_to(element_weight, tf.shape(values))
        if self.patches is None:
            if rank == 1:
                return values, element_weight
            axes = list(range(1, rank))
            numerator = tf.reduce_sum(element_weight * values, axis=axes)
            denominator = tf.reduce_sum(element_weight, axis=axes)
            size = tf.cast(tf.reduce_prod(tf.shape(values)[1:]), tf.float32)
            return tf.math.divide_no_nan(numerator, denominator), denominator / size
        if rank == 4:  # (batch, height, width, channels): average the channels first
            values, element_weight = tf.reduce_mean(values, -1), tf.reduce_mean(element_weight, -1)
        elif rank != 3:
            raise ValueError("With `patches`, the per-element loss must have shape (batch, height, width) or "
                             f"(batch, height, width, channels). Received shape {values.shape}")
        shape = tf.shape(values)
        masks = self.patches.masks(shape[1], shape[2], self._gradtail.state.step)
        numerator = tf.einsum("bhw,khw->bk", element_weight * values, masks)
        denominator = tf.einsum("bhw,khw->bk", element_weight, masks)
        area = tf.reduce_sum(masks, axis=[1, 2])
        pseudo_values = tf.math.divide_no_nan(numerator, denominator)
        pseudo_weights = tf.math.divide_no_nan(denominator, area[None, :])
        return tf.reshape(pseudo_values, [-1]), tf.reshape(pseudo_weights, [-1])

    def _gradtail_statistics(self, inner, values, pseudo_weights, captures):
        """Per-example ⟨∇_i, w̃⟩, ‖∇_i‖² and the s-weighted sums Σ_i s_i ∇_i (one per selected variable)."""
        tf = _backend.import_tensorflow()
        mean_gradient = [tf.convert_to_tensor(v) for v in self._gradtail.state.mean_gradient]
        num_masks = 1 if self.patches is None else self.patches.num_masks
        return _kernels.statistics(self._gradtail.plan, inner, values, pseudo_weights, captures, mean_gradient,
                                   num_masks)

    def _gradtail_weights(self, inner, values, pseudo_weights, captures, update):
        """(q, θ) for the batch; with `update`, applies Algorithm 1's state update first."""
        tf = _backend.import_tensorflow()
        state = self._gradtail.state
        dots, squared, sums = self._gradtail_statistics(inner, values, pseudo_weights, captures)
        mean_gradient = [tf.convert_to_tensor(v) for v in state.mean_gradient]
        mean_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in mean_gradient]))
        denominator = tf.sqrt(squared) * mean_norm
        theta = tf.where(denominator > _TINY, dots / tf.maximum(denominator, _TINY), tf.zeros_like(dots))
        sigma, step = tf.convert_to_tensor(state.sigma), tf.convert_to_tensor(state.step)
        if update:
            packed = tf.concat([tf.stack([tf.reduce_sum(pseudo_weights * tf.abs(theta)),
                                          tf.reduce_sum(pseudo_weights)])]
                               + [tf.reshape(s, [-1]) for s in sums], axis=0)
            packed = _distribute.cross_replica_sum(packed)
            total = packed[1]
            has_data = total > 0
            inverse = 1.0 / tf.maximum(total, _TINY)
            sigma_x = packed[0] * inverse
            offset = 2
            new_means = []
            for g in mean_gradient:
                size = tf.size(g)
                batch_mean = tf.reshape(packed[offset:offset + size], tf.shape(g)) * inverse
                offset += size
                ema = self.decay * g + (1.0 - self.decay) * batch_mean
                new_means.append(tf.where(has_data, tf.where(step < 1, batch_mean, ema), g))
            ema_sigma = self.decay * sigma + (1.0 - self.decay) * sigma_x
            sigma_seeded = tf.where(step < 1, sigma, tf.where(step < 2, sigma_x, ema_sigma))
            sigma = tf.where(has_data, sigma_seeded, sigma)
            for variable, value in zip(state.mean_gradient, new_means):
                variable.assign(value)
            state.sigma.assign(sigma)
            state.step.assign(step + tf.cast(has_data, tf.float32))
        else:
            step = step + 1.0  # scoring: weights as the next training step would give them
        distance = tf.abs(theta / tf.maximum(sigma, _TINY) - self.pivot)
        active = tf.logical_and(step >= 1, sigma > 0)
        weights = tf.where(active, tf.cast(self.activation(distance), tf.float32), tf.ones_like(theta))
        return weights, theta

    def gradtail_batch_scores(self, x, y, sample_weight=None, training=False):
        """(θ, q) per (pseudo-)example of one batch with the current state, without updating it."""
        tf = _backend.import_tensorflow()
        self.gradtail_build()
        inner, _, values, pseudo_weights, captures = self._gradtail_record(x, y, sample_weight, training)
        weights, theta = self._gradtail_weights(inner, values, pseudo_weights, captures, update=False)
        return theta, weights
