"""An optimizer wrapper that combines per-group gradients by GBG's min-norm weights."""

import copy

import keras

from keras_longtail._internal import backend as _backend
from keras_longtail.gbg import _min_norm
from keras_longtail.gbg.gbg_config import GBGConfig

@keras.saving.register_keras_serializable(package="keras_longtail")
class GBGOptimizer(keras.optimizers.Optimizer):
    """Wraps an optimizer so that it applies GBG's direction d = sum_g alpha_g grad L_g.

    A Keras optimizer only ever sees one gradient list, so the per-group losses and
    gradients come from a train step that knows the groups: compile a model with the
    GBG train step (`keras_longtail.training.GBGModel` or a `GBGMixin` subclass) with
    this optimizer and no grouping on the model, and the step takes its
    configuration (`gbg_config`, a `keras_longtail.gbg.GBGConfig`: the grouping and
    the solver settings) from the optimizer; a model given its own grouping owns
    the configuration instead, and the step checks that the two agree.
    The optimizer then does two things:

    - `apply_group_gradients(group_gradients, variables, losses, present)`: solves
      the min-norm problem (Eq. 11) over the present groups,

          alpha = argmin_{alpha in simplex} || sum_g alpha_g grad L_g / c_g ||^2,

      with the gradient normalizer c_g of `normalization` (`"loss+"`: c_g =
      L_g ||grad L_g||, the GBG code; `"none"`: c_g = 1, the paper's Eq. 11 as
      printed), and applies d = sum_g alpha_g grad L_g (Eq. 12, the raw
      gradients, as in the MGDA and GBG code) through the inner optimizer;
      `group_weights(...)` returns alpha alone;
    - `apply(grads)` / `apply_gradients(grads_and_vars)` of a single gradient list
      delegate to the inner optimizer unchanged, so with one group (or outside a
      GBG step) it *is* the inner optimizer.

    Learning rate, schedules, `iterations`, weight decay, loss scaling and the slot
    variables are the inner optimizer's; `get_config` serializes the inner
    optimizer, and a model compiled with it saves and reloads as `.keras`. Inside
    `tf.distribute`, the group gradients and losses given to `group_weights` /
    `apply_group_gradients` are each replica's share (as Keras' `compute_loss`
    gives them); they are summed over replicas for the solve, so every replica uses
    the same alpha. TensorFlow backend only.

    Args:
        inner_optimizer: the `keras.optimizers.Optimizer` that applies d.
        grouping: a `keras_longtail.gbg.ClassGrouping` (or a list of group ids, one
            per class) for the train step; `None` when the model has its own (then
            the model owns the configuration, see `GBGMixin`). Defaults to `None`.
        normalization: `"none"`, `"l2"`, `"loss"` or `"loss+"`. `None` (the
            default): `GBGConfig`'s default, `"loss+"`, what the GBG code runs.
            `"none"` is Eq. 11 as printed.
        solver: `"active_set"`, `"pgd"` or `"frank_wolfe"` (see
            `keras_longtail.gbg.min_norm_weights`). `None` (the default):
            `GBGConfig`'s default, `"active_set"`.
        max_iterations: iteration bound of the solver. `None` (the default):
            `GBGConfig`'s default, 250.
        tolerance: relative duality-gap tolerance of the solver. `None` (the
            default): `GBGConfig`'s default, `1e-6`.
        name: optimizer name. Defaults to `None`.

    Example:

    ```python
    optimizer = GBGOptimizer(keras.optimizers.SGD(0.1, momentum=0.9), grouping)
    model = keras_longtail.training.GBGModel.from_model(network)  # grouping from the optimizer
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```

    >>> import numpy as np
    >>> from keras_longtail.gbg import ClassGrouping
    >>> from keras_longtail.training import GBGModel
    >>> inputs = keras.Input((4,))
    >>> features = keras.layers.Dense(5, activation="relu")(inputs)
    >>> network = keras.Model(inputs, keras.layers.Dense(3, name="classifier")(features))
    >>> model = GBGModel.from_model(network)
    >>> optimizer = GBGOptimizer(keras.optimizers.SGD(0.1), ClassGrouping([0, 1, 1]))
    >>> model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> _ = model.fit(np.ones((6, 4)), np.arange(6) % 3, verbose=0)
    >>> int(optimizer.iterations), round(float(optimizer.learning_rate), 6)
    (1, 0.1)

    Direct use on two gradient lists (a custom loop): opposite gradients of equal
    norm get equal weights, so d = 0 and the variable does not move.

    >>> variable = keras.Variable([1.0, 1.0])
    >>> optimizer = GBGOptimizer(keras.optimizers.SGD(0.5), normalization="none")
    >>> alpha = optimizer.apply_group_gradients([[np.array([1.0, 0.0])], [np.array([-1.0, 0.0])]], [variable])
    >>> np.round(alpha.numpy(), 3).tolist(), variable.numpy().tolist()
    ([0.5, 0.5], [1.0, 1.0])

    References:
        Li et al., "Long-Tailed Learning as Multi-Objective Optimization", AAAI 2024,
        https://arxiv.org/abs/2310.20490 (Algorithm 2, Eq. 11-12).
        Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
        NeurIPS 2018, https://arxiv.org/abs/1810.04650.
    """

    def __init__(self, inner_optimizer, grouping=None, normalization=None, solver=None, max_iterations=None,
                 tolerance=None, name=None, **kwargs):
        _backend.require_tensorflow_backend(type(self).__name__)
        if kwargs:
            raise TypeError(f"GBGOptimizer got unexpected keyword arguments {sorted(kwargs)}: set learning rate, "
                            "weight decay, clipping and loss scaling on `inner_optimizer`. "
                            f"Received: {kwargs}")
        if isinstance(inner_optimizer, (str, dict)):
            inner_optimizer = keras.optimizers.get(inner_optimizer)
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise TypeError("Expected `inner_optimizer` to be a keras.optimizers.Optimizer. "
                            f"Received: inner_optimizer={inner_optimizer!r}")
        config = GBGConfig.from_arguments(grouping, normalization=normalization, solver=solver,
                                          max_iterations=max_iterations, tolerance=tolerance)
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self._gbg_config = config

    @property
    def gbg_config(self):
        """The optimizer's `keras_longtail.gbg.GBGConfig` (grouping and solver settings)."""
        return self._gbg_config

    # The settings, read from `gbg_config` (not settable).
    grouping = property(lambda self: self._gbg_config.grouping)
    normalization = property(lambda self: self._gbg_config.normalization)
    solver = property(lambda self: self._gbg_config.solver)
    max_iterations = property(lambda self: self._gbg_config.max_iterations)
    tolerance = property(lambda self: self._gbg_config.tolerance)

    # ------------------------------------------------------------ delegation
    def build(self, var_list):
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        if not self.built and trainable_variables is not None:
            self.build(list(trainable_variables))
        self.inner_optimizer.apply(grads, trainable_variables)

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    # ------------------------------------------------------------ GBG
    def group_weights(self, group_gradients, losses=None, present=None, return_gap=False):
        """alpha on the simplex of the present groups (float32 (G,) tensor).

        Args:
            group_gradients: G gradient lists (one per group, same structure; `None`
                leaves count as zeros).
            losses: the G group losses; needed by `"loss"` and `"loss+"`.
            present: G booleans; absent groups get alpha = 0. Defaults to the groups
                whose gradient is not identically zero.
            return_gap: also return the solve's certified relative duality gap (a
                float32 scalar, at most `tolerance` when the solve converged; see
                `keras_longtail.gbg.min_norm_weights`). Defaults to `False`.
        """
        tf = _backend.import_tensorflow()
        if not group_gradients:
            raise ValueError("Expected at least one gradient list in `group_gradients`. Received: []")
        if losses is None and self.normalization in ("loss", "loss+") and len(group_gradients) > 1:
            raise ValueError(f"normalization={self.normalization!r} needs the group `losses`. Received: losses=None")
        if present is not None:
            present = tf.cast(tf.reshape(present, [-1]), tf.bool)
        return _min_norm.group_weights(list(group_gradients), losses, present, return_gap=return_gap,
                                       **self._gbg_config.solver_settings())

    def apply_group_gradients(self, group_gradients, trainable_variables=None, losses=None, present=None):
        """Applies d = sum_g alpha_g grad_g through the inner optimizer and returns alpha.

        Args:
            group_gradients: G gradient lists, each matching `trainable_variables`.
            trainable_variables: the variables (needed on the first call, as for `apply`).
            losses, present: see `group_weights`.
        """
        alpha = self.group_weights(group_gradients, losses, present)
        self.apply(_min_norm.combine(alpha, list(group_gradients)), trainable_variables)
        return alpha

    # ------------------------------------------------------------ config
    def get_config(self):
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            **self._gbg_config.get_config(),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = copy.deepcopy(config)  # Keras' deserialization rewrites nested configs in place
        inner = keras.saving.deserialize_keras_object(config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)
