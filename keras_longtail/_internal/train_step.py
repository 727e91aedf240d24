"""The one contract for `train_step` mixins (GradTail, GBG): gradients, loss scaling, loss logging, config.

A method that replaces Keras' `train_step` inherits `TrainStepMixin` (before
`keras.Model`, after nothing that defines `get_config`) and writes its step with
these four pieces, so that every such method behaves as Keras' built-in step does
under `tf.distribute`, in mixed precision and when saved:

```python
class MyMethodMixin(TrainStepMixin):
    method_config_keys = ("strength",)

    def method_config(self):
        return {"strength": self.strength}

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            scaled = self.step_scale_loss(loss)                    # (b) loss scaling (mixed_float16)
        gradients = tape.gradient(scaled, self.trainable_weights)
        self.step_apply_gradients(gradients, self.trainable_weights)   # (a) LossScaleOptimizer-aware
        self.step_log_loss(loss, x)                                # (c) the global batch loss in `logs["loss"]`
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
```

(d) `get_config()` is Keras' own config of the model plus `method_config()`
(plain JSON), and `from_config()` rebuilds the model from it: a functional model
from its graph, a subclassed one by `cls(**config)`.

The replica's loss. Under `tf.distribute` each replica differentiates its share
of the objective: shares that sum, over the replicas, to the global batch loss
(Keras' `compute_loss` returns the replica's mean loss divided by the number of
replicas; a loss computed as Σ_{replica's examples} / (global count) is one too).
That share is what `step_scale_loss` and `step_log_loss` take.
"""

import keras

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import distribute as _distribute

_FUNCTIONAL_CONFIG_KEYS = ("layers", "input_layers", "output_layers")


def _is_functional(model):
    """Whether `model` is a functional model (its `inputs` and `outputs` are symbolic tensors)."""
    try:
        return bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


class TrainStepMixin:
    """Base of the `train_step` mixins: one way to apply gradients, scale and log the loss, and serialize.

    Subclasses set `method_config_keys` (the constructor arguments of the
    method, the keys of `method_config()`) and define `method_config()`.
    TensorFlow backend (the mixins' steps are TensorFlow code).

    - `step_scale_loss(loss)`: `self.optimizer.scale_loss(loss)`, the loss to
      differentiate (multiplied by the dynamic loss scale of the
      `keras.optimizers.LossScaleOptimizer` that `compile` wraps around the
      optimizer under `mixed_float16`; unchanged otherwise).
    - `step_apply_gradients(gradients, variables)`: `self.optimizer.apply`, which
      unscales the gradients of a scaled loss and skips a step whose float16
      gradients overflowed.
    - `step_log_loss(loss, x)`: feeds Keras' `"loss"` tracker the global batch
      loss L = Σ_replicas loss (all-reduced) with the global batch size B as its
      weight, so `logs["loss"]` is the epoch's Σ B·L / Σ B on one device and
      under `tf.distribute` alike (every replica feeds the same pair).
    - `get_config()` / `from_config()`: the model's Keras config plus
      `method_config()`; see the module docstring.
    """

    method_config_keys = ()

    def method_config(self):
        """The method's constructor arguments as plain JSON (keys: `method_config_keys`)."""
        raise NotImplementedError(f"{type(self).__name__} must define `method_config()`.")

    # ------------------------------------------------------------------ (a) and (b): the update
    def step_scale_loss(self, loss):
        """The loss to differentiate: `self.optimizer.scale_loss(loss)` (identity without an optimizer)."""
        optimizer = getattr(self, "optimizer", None)
        return loss if optimizer is None else optimizer.scale_loss(loss)

    def step_apply_gradients(self, gradients, variables):
        """Applies `gradients` (of the scaled loss) to `variables` with the compiled optimizer.

        `self.optimizer.apply(gradients, variables)`: a `LossScaleOptimizer`
        unscales them (and skips non-finite steps) before its inner optimizer.
        """
        self.optimizer.apply(list(gradients), list(variables))

    # ------------------------------------------------------------------ (c): the logged loss
    def step_log_loss(self, loss, x):
        """Feeds Keras' `"loss"` tracker the global batch loss, weighted by the global batch size.

        Args:
            loss: the replica's share of the batch loss (unscaled): the shares of
                all replicas sum to the global batch loss (on one device, the
                batch loss itself).
            x: the replica's inputs (their first non-`None` leaf gives its batch size).

        Returns:
            The global batch loss (float32 scalar).
        """
        tf = _backend.import_tensorflow()
        tracker = next((m for m in self.metrics if m.name == "loss"), None)
        if tracker is None:
            raise ValueError(f"{type(self).__name__} has no 'loss' metric to log into: compile the model before "
                             f"training. Received: metrics={[m.name for m in self.metrics]}")
        global_loss = _distribute.cross_replica_sum(tf.cast(loss, tf.float32))
        first = next(leaf for leaf in keras.tree.flatten(x) if leaf is not None)
        batch = _distribute.cross_replica_sum(tf.cast(tf.shape(first)[0], tf.float32))
        tracker.update_state(global_loss, sample_weight=batch)
        return global_loss

    # ------------------------------------------------------------------ (d): serialization
    def get_config(self):
        """Keras' config of the model plus `method_config()`.

        For a functional model whose constructor is not shaped like
        `Model(inputs, outputs)` (Keras then leaves the graph out), the graph comes
        from a plain functional view of the same layers.
        """
        config = super().get_config()
        if _is_functional(self) and not all(key in config for key in _FUNCTIONAL_CONFIG_KEYS):
            config = keras.Model(self.input, self.output, name=self.name, trainable=self.trainable).get_config()
        method = self.method_config()
        unknown = sorted(set(method) - set(self.method_config_keys))
        if unknown:
            raise ValueError(f"Expected `method_config()` keys among {type(self).__name__}.method_config_keys="
                             f"{list(self.method_config_keys)}. Received: {unknown}")
        config.update(method)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuilds the model from `get_config()`: the graph for a functional config, else `cls(**config)`."""
        config = dict(config)
        method = {key: config.pop(key) for key in cls.method_config_keys if key in config}
        if all(key in config for key in _FUNCTIONAL_CONFIG_KEYS):
            functional = keras.Model.from_config(config, custom_objects=custom_objects)
            return cls(functional.input, functional.output, name=functional.name, **method)
        return cls(**config, **method)
