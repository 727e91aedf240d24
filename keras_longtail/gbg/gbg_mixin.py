"""The GBG train step: one loss per class group, MGDA min-norm weights, one update."""

import keras
import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import checks as _checks
from keras_longtail._internal import distribute as _distribute
from keras_longtail._internal.train_step import TrainStepMixin
from keras_longtail._internal import validation as _validation
from keras_longtail.gbg import _min_norm
from keras_longtail.gbg.class_grouping import ClassGrouping
from keras_longtail.gbg.class_grouping import as_grouping
from keras_longtail.gbg.gbg_config import SOLVER_SETTINGS
from keras_longtail.gbg.gbg_config import GBGConfig
from keras_longtail.gbg.gbg_config import describe

MODES = ("backbone", "exact", "representation")
GROUP_LOSSES = ("mean", "class_balanced")
WEIGHTINGS = ("min_norm", "average")
_GBG_KEYS = ("grouping", "mode", "normalization", "solver", "head_layer", "max_iterations", "tolerance",
             "solve_every", "group_loss", "weighting")


class GBGMixin(TrainStepMixin):
    """Mixin giving a Keras model GBG's multi-objective train step (Algorithm 2).

    Put it before `keras.Model` in the bases of a model class (or use `GBGModel`,
    which is `GBGMixin` on a functional model). Each training step:

    1. one forward pass; the batch is split by the group of each label
       (`grouping.groups[label]`), B_g = the examples of group g;
    2. per group the compiled loss on B_g (see `group_loss`); by default its mean
       over the group: L_g = compute_loss(sample_weight = w * 1[group = g] * B / n_g)
       (for Keras' default `"sum_over_batch_size"` reduction, the mean of w l over
       B_g; the model's regularization losses are part of every L_g);
    3. per-group gradients (see `mode`), their Gram matrix and the min-norm weights
       alpha on the simplex of the groups *present* in the (global) batch (Eq. 11,
       with the gradient normalizer `normalization`);
    4. d = sum_g alpha_g grad L_g (Eq. 12) is applied by the compiled optimizer, so
       learning rate, schedules, iterations, weight decay and loss scaling are the
       optimizer's own.

    Groups absent from the batch get alpha = 0 and contribute nothing (no NaN). With
    one group, L_1 is the usual batch loss and the step equals Keras' built-in one.
    The logged `loss` is the ordinary batch loss (comparable with other methods).

    Modes (which gradients alpha is solved on; the update d always uses the full
    gradients):

    - `"backbone"` (the default, the GBG code): one backward pass per group over
      all trainable weights (G + 1 passes for G groups); alpha is solved on the
      gradients of every weight *except* the `head_layer`'s (the code's
      `get_group_g_grad_on_backbone` skips the classifier `fc` and BCL's heads),
      then d = sum_g alpha_g grad L_g over all weights, which is what the code's
      single backward of 2.0 * sum_g alpha_g CE_g + 1.6 * SupCon applies to its CE
      part. Needs a layer named `head_layer`.
    - `"exact"` (Algorithm 2 as printed): as `"backbone"`, with alpha solved on the
      gradients of all trainable weights, the classifier's included.
    - `"representation"`: the min-norm weights come from the gradients of the
      `head_layer` weights only (the classifier), which need no backward pass
      through the network; then one full backward of sum_g alpha_g L_g. Cheap
      (about one plain step) but only a heuristic: unlike MGDA-UB's shared
      representation, the classifier is not upstream of the other weights, so its
      min-norm point bounds nothing about the full one. Softmax makes disjoint class
      groups conflict on the classifier, and with `normalization="none"` alpha can
      collapse onto one group while the loss rises (measurements in
      docs/methods/gbg.md). Prefer `"backbone"` or `"exact"`.
      Gradients with respect to the feature *activations* would not do either:
      groups own disjoint rows of the batch, so those gradients are orthogonal
      and the Gram matrix diagonal.

    GBG balances groups, not classes: each L_g is the plain mean loss of its
    group's examples, so inside a group the largest class dominates, and a class
    whose group holds a larger share of the batch than its alpha_g gets less
    weight per example than under plain CE (alpha_g / n_g against 1 / B); a class
    much smaller than its group's largest can be left unlearned (measured in
    docs/methods/gbg.md). Summed over a class, these weights give it a share s_c of
    the loss set by its group rather than its size, and a cross-entropy trained so
    carries log s_c in its logits, as a prior; subtracting it before the argmax
    undoes that tilt (docs/methods/gbg.md: how s_c is computed for a grouping and
    sampler, and what undoing it recovers).
    Check the grouping against the class counts
    (`ClassGrouping.within_group_imbalance`) and watch `gbg_alpha_max` (below).

    Group losses (`group_loss`, all three modes): with n_g and n_c the examples of
    group g and of class c in the global batch (all-reduced over the replicas, so a
    `tf.distribute` step equals one device's), and m_g the number of classes of g
    present in it,

    - `"mean"` (the default): L_g = (1 / n_g) sum_{i in B_g} w_i l_i, the mean over
      the group's examples: the paper's group loss of Eq. 11 and what the GBG code
      (WickyLee1998/GBG_v1) runs, one cross-entropy per group;
    - `"class_balanced"` (ours, not in the paper or the code; a control for the
      diagnosis above): every class of the group present in the batch counts
      equally, L_g = (1 / m_g) sum_{c in g, n_c > 0} (1 / n_c) sum_{i: y_i = c} w_i l_i,
      i.e. sample weights w_i * B / (m_g * n_{y_i}). It equals `"mean"` when every
      group has one class, or when the classes of each group are equally frequent
      in the batch.

    Group weighting (`weighting`): `"min_norm"` (the default) is the MGDA
    solve above, GBG with MOO. `"average"` skips the solve: alpha is uniform over
    the groups present in the (global) batch, d = (1 / |P|) sum_{g in P} grad L_g,
    one backward pass (about a plain step; `mode` and the solver settings are then
    unused): the paper's "GBG" row without MOO (its Table 6: "use average
    strategy to merge the gradients of groups"), the ablation that tells the
    grouping's average re-weighting from the per-step solve.

    Amortized solve (`solve_every=k`, backbone or exact mode): every k-th step (optimizer
    iterations 0, k, 2k, ...) is the exact step above and stores alpha in the
    non-trainable variable `gbg_alpha`; the k - 1 steps between reuse it,
    restricted to the groups present in the batch and renormalized (uniform if
    none of them had weight), as one backward pass of sum_g alpha_g L_g: about a
    plain step. Mean cost about (exact + (k - 1) plain) / k; for G = 4 the exact
    step cannot be much cheaper than (1 + 2G) / 3 plain steps (one forward, G
    backward passes, each coupled across the batch by batch normalization). This
    is an approximation of Algorithm 2 (alpha is up to k - 1 steps stale), the
    same trade as Nash-MTL's `update_weights_every`; `k = 1` (the default) is the
    paper and the code. Under `tf.distribute` a synchronization point cannot sit inside the
    step's `tf.cond`, so the all-reduce runs at every step on one flat tensor
    whose length the cond decides: the G per-group gradients on solve steps,
    zero elements between them (nothing of size G x parameters crosses the
    replicas between solves). On one device everything sits inside the cond.
    Where the replicas are compiled by XLA (`jit_compile=True` under a strategy,
    `TPUStrategy`), shapes must be static: there the per-group gradients are
    all-reduced at every step, zeros between solves.

    The solve's certificate is logged: `gbg_solver_gap` in the training logs is
    the largest relative duality gap of the epoch's solves (see
    `keras_longtail.gbg.min_norm_weights(..., return_gap=True)`): at most
    `tolerance` when every solve reached the optimum, larger when one stopped
    at `max_iterations` (raise it, or use `solver="active_set"`, the default).
    `gbg_alpha_max` is the epoch's mean of the largest group weight, max_g alpha_g,
    over its steps (the applied alpha, stored or solved; a skipped float16 step is
    not counted): 1 / G when alpha is uniform over G groups, 1 when one group takes
    the whole step. A value near 1 on a long-tailed problem says that alpha keeps
    concentrating on one group (with `normalization="loss+"`, a small group whose
    loss is high; see docs/methods/gbg.md). `gbg_alpha_change` is the epoch's
    mean of how much of alpha moves from one step to the next,
    0.5 * sum_g |alpha_g(t) - alpha_g(t - 1)| (the total-variation distance),
    over its steps after the first: 0 when alpha is held (`solve_every` steps
    apart, or a grouping whose alpha does not change), 1 when the whole weight
    moves to other groups at every step. The two tell concentration from swings:
    a large `gbg_alpha_max` with a small change is a steady favourite group.
    `gbg_alpha_0`, ..., `gbg_alpha_<G-1>` are the epoch's mean of each group's
    weight alpha_g over the same steps as `gbg_alpha_max` (absent groups count as
    0): the average weighting the solve gave the groups, to compare with their
    share of the data (a small group with a large mean weight is up-weighted on
    average, like class re-weighting; a mean near the share with a large change is
    a weighting that only swings). (`gbg_alpha_change` and the per-group means
    need the number of groups before the step is traced: a grouping on the model,
    or `fit` / `train_on_batch` with a GBGOptimizer.)
    None of them is a model weight or an evaluation metric.

    Under `tf.distribute` the group counts, group losses and per-group gradients
    are summed over replicas before the solve, so every replica solves the same
    problem and the update equals one device's on the same global batch (each
    replica then hands its local share of d to the optimizer, which sums them).

    TensorFlow backend only; runs with `jit_compile=True`, under
    `MirroredStrategy` and in mixed precision (`mixed_bfloat16`, and
    `mixed_float16` with the `LossScaleOptimizer` Keras' `compile` wraps around
    the optimizer, a `GBGOptimizer` included): the group losses are float32, the
    Gram matrix and the solve float64, alpha float32; a step whose float16
    gradients overflowed solves nothing (uniform alpha, not counted in
    `gbg_solver_gap`, the stored alpha kept) and the loss scaler skips it.

    The group ids live in the non-trainable int32 variable `gbg_groups` (one
    of `model.weights`), so a checkpoint (`load_weights`, Keras' or
    `keras_longtail.callbacks.BackupAndRestore`) restores the grouping it was
    trained with: a restarted process that re-computes a different grouping
    before `fit` still resumes with the interrupted run's. `grouping` reads
    the variable (a `ClassGrouping` with the constructor's `num_groups`).

    Args:
        grouping: a `keras_longtail.gbg.ClassGrouping` (or a list of group ids,
            one per class), or `None` when the model is compiled with a
            `keras_longtail.optimizers.GBGOptimizer` that holds the grouping and
            the solver settings. Defaults to `None`.
        mode: `"backbone"`, `"exact"` or `"representation"` (see above). Defaults
            to `"backbone"`, what the GBG code runs (`cifar_Group_full.py:train`
            solves on `get_group_g_grad_on_backbone`'s gradients).
        normalization: gradient normalizer before the solve: `"none"`, `"l2"`,
            `"loss"` or `"loss+"` (c_g = L_g ||grad L_g||, the norm over the
            weights alpha is solved on). `None` (the default): `GBGConfig`'s
            default, `"loss+"` (the GBG code's). `"none"` is the paper's Eq. 11 as
            printed, which on a short budget let the head group take alpha and
            starved tail classes (see benchmarks/README.md).
        solver: `"active_set"`, `"pgd"` or `"frank_wolfe"` (see
            `keras_longtail.gbg.min_norm_weights`). `None` (the default):
            `GBGConfig`'s default, `"active_set"`.
        head_layer: name of the classifier layer: the weights `"backbone"` leaves
            out of the solve and `"representation"` solves on. Defaults to
            `"classifier"`.
        max_iterations: iteration bound of the solver. `None` (the default):
            `GBGConfig`'s default, 250.
        tolerance: relative duality-gap tolerance of the solver. `None` (the
            default): `GBGConfig`'s default, `1e-6`.
        solve_every: re-solve alpha every this many steps (see above; backbone or
            exact mode, with the grouping on the model). Defaults to `1` (every
            step, as the code).
        group_loss: `"mean"` or `"class_balanced"`: the loss L_g of each group
            (see "Group losses" above). Defaults to `"mean"` (the paper's Eq. 11 and
            the GBG code's).
        weighting: `"min_norm"` (MGDA, the paper's GBG + MOO and the code's) or
            `"average"` (uniform over the present groups, the paper's ablation
            without MOO; see "Group weighting" above). Defaults to `"min_norm"`.

    One owner for the configuration: the grouping and the four solver settings
    form one `keras_longtail.gbg.GBGConfig` (`gbg_config`). Given a `grouping`,
    the model owns it; without one, it is the compiled `GBGOptimizer`'s (then the
    solver settings go to the optimizer too, and giving them to the model raises).
    A `GBGOptimizer` compiled into a model with its own configuration must agree
    with it: the step raises `ValueError` naming the settings otherwise, when it is
    traced (the first step); it reads the configuration in force and merges
    nothing. `mode`,
    `head_layer`, `solve_every`, `group_loss` and `weighting` shape the step and are the model's only.

    Example:

    ```python
    class MyModel(GBGMixin, keras.Model):
        ...

    model = MyModel(inputs, outputs, grouping=grouping, mode="representation")
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```

    >>> import numpy as np
    >>> from keras_longtail.gbg import ClassGrouping
    >>> class Net(GBGMixin, keras.Model):
    ...     pass
    >>> inputs = keras.Input((4,))
    >>> features = keras.layers.Dense(5, activation="relu")(inputs)
    >>> net = Net(inputs, keras.layers.Dense(3, name="classifier")(features), grouping=ClassGrouping([0, 1, 1]))
    >>> net.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> history = net.fit(np.ones((6, 4)), np.arange(6) % 3, verbose=0)
    >>> bool(np.isfinite(history.history["loss"][0]))
    True

    References:
        Li et al., "Long-Tailed Learning as Multi-Objective Optimization", AAAI 2024,
        https://arxiv.org/abs/2310.20490 (Algorithm 2, Eq. 10-12).
        Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
        NeurIPS 2018, https://arxiv.org/abs/1810.04650.
    """

    def __init__(self, *args, grouping=None, mode="backbone", normalization=None, solver=None,
                 head_layer="classifier", max_iterations=None, tolerance=None, solve_every=1, group_loss="mean",
                 weighting="min_norm", **kwargs):
        _backend.require_tensorflow_backend(type(self).__name__)
        grouping = None if grouping is None else as_grouping(grouping)
        _validation.check_choice("mode", mode, MODES)
        _validation.check_choice("group_loss", group_loss, GROUP_LOSSES)
        _validation.check_choice("weighting", weighting, WEIGHTINGS)
        solve_every = _validation.check_int("solve_every", solve_every, minimum=1)
        if solve_every > 1 and mode == "representation":
            raise ValueError("`solve_every` > 1 amortizes the backbone and exact modes' solve; representation mode "
                             "costs about a plain step already. "
                             f"Received: solve_every={solve_every} with mode={mode!r}")
        if solve_every > 1 and weighting == "average":
            raise ValueError("`solve_every` > 1 amortizes the min-norm solve; weighting='average' solves nothing "
                             f"and costs about a plain step already. Received: solve_every={solve_every} with "
                             f"weighting={weighting!r}")
        if solve_every > 1 and grouping is None:
            raise ValueError("`solve_every` > 1 keeps alpha in a variable sized by the grouping: give `grouping` to "
                             f"the model, not only to a GBGOptimizer. Received: solve_every={solve_every}, "
                             "grouping=None")
        given = {"normalization": normalization, "solver": solver, "max_iterations": max_iterations,
                 "tolerance": tolerance}
        if grouping is None and any(value is not None for value in given.values()):
            raise ValueError(
                "Without `grouping` the GBG configuration (grouping and solver settings) is the compiled "
                "GBGOptimizer's: give the solver settings to it, or give the model its grouping. "
                "Received: grouping=None, "
                + ", ".join(f"{key}={value!r}" for key, value in given.items() if value is not None))
        # The model's own configuration (validated here; None: the compiled GBGOptimizer's).
        config = None if grouping is None else GBGConfig.from_arguments(
            ClassGrouping(grouping.groups, grouping.num_groups), **given)
        super().__init__(*args, **kwargs)
        if grouping is not None:
            self._gbg_check_grouping(grouping)
        outputs = getattr(self, "outputs", None)
        if mode in ("representation", "backbone") and outputs:
            try:
                self.get_layer(head_layer)
            except ValueError:
                raise ValueError(f"mode={mode!r} needs a layer named `head_layer`={head_layer!r} (mode='exact' "
                                 "solves on all weights and needs none). "
                                 f"The model's layers are {[l.name for l in self.layers]}") from None
            if mode == "backbone":
                self._gbg_backbone_positions(head_layer)
        self._gbg_own_config = config
        if grouping is not None:
            # The group ids live in a variable, saved with the weights: a checkpoint restores the grouping
            # of the run that wrote it (a restarted process need not re-compute the same one). A grouping
            # held by a compiled GBGOptimizer instead is part of the optimizer's config.
            with _distribute.model_scope(self):
                self.gbg_groups = self.add_weight(shape=(grouping.num_classes,), initializer="zeros",
                                                  dtype="int32", trainable=False,
                                                  aggregation="only_first_replica", name="gbg_groups")
            self.gbg_groups.assign(np.asarray(grouping.groups, dtype=np.int32))
        if solve_every > 1:
            # The last solve's alpha, reused by the steps between solves (saved with the weights, so a resumed
            # run continues with it).
            with _distribute.model_scope(self):
                self.gbg_alpha = self.add_weight(shape=(grouping.num_groups,), initializer="zeros",
                                                 dtype="float32", trainable=False,
                                                 aggregation="only_first_replica", name="gbg_alpha")
        with _distribute.model_scope(self):
            # The largest relative duality gap of the epoch's solves, logged as `gbg_solver_gap`; in a plain
            # box, so that Keras tracks it neither as a weight (saved) nor as a metric (evaluated).
            self._gbg_gap_holder = _Holder(keras.Variable(0.0, dtype="float32", trainable=False,
                                                          aggregation="only_first_replica", name="gbg_solver_gap"))
            # The sum and count of the epoch's largest group weights max_g alpha_g, logged as their mean
            # `gbg_alpha_max`, and the sum of 0.5 * ||alpha(t) - alpha(t - 1)||_1 over the epoch's steps after
            # its first, logged as `gbg_alpha_change` (its count is the other's minus one), in the same box.
            self._gbg_alpha_holder = _Holder(
                [keras.Variable(0.0, dtype="float32", trainable=False, aggregation="only_first_replica",
                                name=name) for name in ("gbg_alpha_max_sum", "gbg_alpha_max_count",
                                                        "gbg_alpha_change_sum")])
        # The previous step's alpha and the sum of the epoch's alphas (logged as their means `gbg_alpha_<g>`),
        # once the number of groups is known: here, or in `make_train_function` from a compiled GBGOptimizer's
        # grouping.
        self._gbg_group_alpha_holder = _Holder(None)
        if grouping is not None:
            self._gbg_size_group_alpha(grouping.num_groups)
        self.mode = mode
        self.head_layer = head_layer
        self.solve_every = solve_every
        self.group_loss = group_loss
        self.weighting = weighting

    @property
    def grouping(self):
        """The model's `ClassGrouping`: the group ids held in `gbg_groups` (restored with the weights), or
        `None` when the grouping comes from a compiled `GBGOptimizer`."""
        if self._gbg_own_config is None:
            return None
        own = self._gbg_own_config.grouping
        groups = [int(g) for g in keras.ops.convert_to_numpy(self.gbg_groups)]
        if groups == own.groups:
            return own
        return ClassGrouping(groups, own.num_groups)  # raises if the ids do not fit num_groups

    @property
    def gbg_config(self):
        """The `keras_longtail.gbg.GBGConfig` in force: the model's own (its grouping read from `gbg_groups`),
        else the compiled `GBGOptimizer`'s, else `None`."""
        config = self._gbg_config_in_force(required=False)
        if config is not None and config is self._gbg_own_config:
            return config.replace(grouping=self.grouping)
        return config

    # The solver settings in force, read from `gbg_config` (None while there is none); not settable.
    normalization = property(lambda self: self._gbg_setting("normalization"))
    solver = property(lambda self: self._gbg_setting("solver"))
    max_iterations = property(lambda self: self._gbg_setting("max_iterations"))
    tolerance = property(lambda self: self._gbg_setting("tolerance"))

    def _gbg_setting(self, key):
        config = self._gbg_config_in_force(required=False)
        return None if config is None else getattr(config, key)

    def _gbg_optimizer(self):
        """The compiled `GBGOptimizer` (unwrapped from the `LossScaleOptimizer` of mixed_float16), or None."""
        from keras_longtail.gbg.gbg_optimizer import GBGOptimizer

        optimizer = getattr(self, "optimizer", None)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):  # mixed_float16 wraps it in compile
            optimizer = optimizer.inner_optimizer
        return optimizer if isinstance(optimizer, GBGOptimizer) else None

    def _gbg_config_in_force(self, required=True):
        """The configuration the step uses: the model's own, else the compiled GBGOptimizer's.

        Pure Python, run when the step is traced (no host read: the model's own group ids are read from
        `gbg_groups` by the step). A GBGOptimizer compiled into a model that owns its configuration must agree
        with it; the two are compared here, never merged.
        """
        own = self._gbg_own_config
        optimizer = self._gbg_optimizer()
        if own is not None and optimizer is not None:
            differences = own.differences(optimizer.gbg_config)
            if differences:
                raise ValueError(
                    "The model has its own GBG configuration (it was given a grouping), and the compiled "
                    "GBGOptimizer's differs: give the settings once, to the model or to the optimizer. Received: "
                    + "; ".join(f"model {key}={describe(mine)}, optimizer {key}={describe(theirs)}"
                                for key, (mine, theirs) in differences.items()))
        config = own if own is not None else None if optimizer is None else optimizer.gbg_config
        if config is None or config.grouping is None:
            if not required:
                return config
            raise ValueError(f"{type(self).__name__} needs `grouping` (a ClassGrouping), on the model or on a "
                             "compiled keras_longtail.optimizers.GBGOptimizer. Received: grouping=None")
        if config is not own:
            self._gbg_check_grouping(config.grouping)
        return config

    def _gbg_check_grouping(self, grouping):
        outputs = getattr(self, "outputs", None)
        if outputs:
            num_classes = outputs[0].shape[-1]
            if num_classes is not None and num_classes != grouping.num_classes:
                raise ValueError(
                    f"Expected `grouping` to cover the model's {num_classes} classes. "
                    f"Received a grouping of {grouping.num_classes} classes")

    def gbg_settings(self):
        """The configuration in force as a dict: `grouping`, `normalization`, `solver`, `max_iterations`
        and `tolerance` (see `gbg_config`)."""
        config = self._gbg_config_in_force()
        return {"grouping": config.grouping, **config.solver_settings()}

    method_config_keys = _GBG_KEYS

    def method_config(self):
        """The GBG constructor arguments as plain JSON (the solver settings `None` when the optimizer owns them)."""
        own = self._gbg_own_config
        return {"grouping": None if own is None else self.grouping.get_config(), "mode": self.mode,
                "head_layer": self.head_layer, "solve_every": self.solve_every, "group_loss": self.group_loss,
                "weighting": self.weighting,
                **{key: None if own is None else getattr(own, key) for key in SOLVER_SETTINGS}}

    # ------------------------------------------------------------------ the step
    def train_step(self, data):
        tf = _backend.import_tensorflow()
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        gradients, _, y_pred, batch_loss = self.gbg_gradients(x, y, sample_weight)
        self.step_apply_gradients(gradients, self.trainable_weights)  # the train-step contract
        self.step_log_loss(batch_loss, x)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        logs["gbg_solver_gap"] = tf.convert_to_tensor(self._gbg_solver_gap())
        total, count, change = (tf.convert_to_tensor(v) for v in self._gbg_alpha_holder.value)
        logs["gbg_alpha_max"] = total / tf.maximum(count, 1.0)
        if self._gbg_group_alpha_holder.value is not None:
            logs["gbg_alpha_change"] = change / tf.maximum(count - 1.0, 1.0)
            means = tf.convert_to_tensor(self._gbg_group_alpha_holder.value[1]) / tf.maximum(count, 1.0)
            for g in range(means.shape[0]):
                logs[f"gbg_alpha_{g}"] = means[g]
        return logs

    def _gbg_solver_gap(self):
        """The largest relative duality gap of this epoch's solves (a variable, reset with the metrics).

        Held outside Keras' tracking, so it is neither a model weight (saved) nor an evaluation metric.
        """
        return self._gbg_gap_holder.value

    def reset_metrics(self):
        super().reset_metrics()
        self._gbg_solver_gap().assign(0.0)
        for variable in self._gbg_alpha_holder.value:
            variable.assign(0.0)
        if self._gbg_group_alpha_holder.value is not None:
            sums = self._gbg_group_alpha_holder.value[1]
            sums.assign(keras.ops.zeros_like(sums))

    def gbg_gradients(self, x, y, sample_weight=None):
        """The replica's share of d = sum_g alpha_g grad L_g, alpha, y_pred and the batch loss.

        Call inside a train step (or `tf.function`); returns one gradient per
        `trainable_weights` entry, the (G,) weights alpha (zero for absent groups),
        the predictions and the ordinary batch loss.
        """
        tf = _backend.import_tensorflow()
        config = self._gbg_config_in_force()
        settings = config.solver_settings()
        num_groups = config.grouping.num_groups
        group_weights, present = self._gbg_group_sample_weights(y, sample_weight, config)
        variables = self.trainable_weights
        with tf.GradientTape(persistent=True) as tape:
            y_pred = self(x, training=True)
            batch_loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            group_losses = [self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=weights, training=True)
                            for weights in group_weights]
            scaled = [self.step_scale_loss(loss) for loss in group_losses]
        if self.weighting == "average":
            # no solve: alpha uniform over the present groups, one backward pass of sum_g alpha_g L_g
            present_f = tf.cast(present, tf.float32)
            alpha = present_f / tf.maximum(tf.reduce_sum(present_f), 1.0)
            gradients = self._weighted_backward(tape, scaled, alpha, variables)
            gap = tf.zeros([], tf.float32)  # no solve, so no gap
            if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                # NaN (not counted) where any replica's float16 gradients overflowed, as a solve's would be
                non_finite = tf.add_n([tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(g)), tf.float32))
                                       for g in gradients])
                gap = tf.where(_distribute.cross_replica_sum(non_finite) > 0.0, float("nan"), gap)
        elif self.mode != "representation" and self.solve_every > 1:
            gradients, alpha, gap = self._gbg_amortized(tape, scaled, group_losses, present, variables, settings)
        elif self.mode != "representation":
            per_group = [self._dense(tape.gradient(loss, variables), variables) for loss in scaled]
            alpha, gap = _min_norm.group_weights(self._gbg_solve_part(per_group), group_losses, present,
                                                 return_gap=True, **settings)
            gradients = _min_norm.combine(alpha, per_group)
        else:
            head = self.get_layer(self.head_layer).trainable_weights
            solve_on = [self._dense(tape.gradient(loss, head), head) for loss in scaled]
            alpha, gap = _min_norm.group_weights(solve_on, group_losses, present, return_gap=True, **settings)
            gradients = self._weighted_backward(tape, scaled, alpha, variables)
        # A solve on non-finite gradients (a float16 step the LossScaleOptimizer skips) is not counted.
        counted = tf.cast(tf.math.is_finite(gap), tf.float32)
        gap = tf.where(tf.math.is_finite(gap), gap, 0.0)
        self._gbg_solver_gap().assign(tf.maximum(self._gbg_solver_gap(), gap))
        alpha32 = tf.cast(alpha, tf.float32)
        total, count, change = self._gbg_alpha_holder.value
        if self._gbg_group_alpha_holder.value is not None:
            # None: a step traced outside fit / train_on_batch with a GBGOptimizer's grouping
            previous, sums = self._gbg_group_alpha_holder.value
            # from the epoch's second counted step on; a skipped step neither counts nor becomes the previous
            after_first = counted * tf.cast(tf.convert_to_tensor(count) > 0, tf.float32)
            change.assign_add(after_first * 0.5 * tf.reduce_sum(tf.abs(alpha32 - tf.convert_to_tensor(previous))))
            previous.assign(tf.where(counted > 0, alpha32, tf.convert_to_tensor(previous)))
            sums.assign_add(counted * alpha32)
        total.assign_add(counted * tf.reduce_max(alpha32))
        count.assign_add(counted)
        del tape
        return gradients, alpha, y_pred, batch_loss

    def make_train_function(self, force=False):
        # `fit` and `train_on_batch` come here before tracing the step, outside it: the place to size the
        # previous-alpha state of `gbg_alpha_change` when the grouping is a compiled GBGOptimizer's.
        optimizer = self._gbg_optimizer()
        if self._gbg_own_config is None and optimizer is not None and optimizer.gbg_config.grouping is not None:
            self._gbg_size_group_alpha(optimizer.gbg_config.grouping.num_groups)
        return super().make_train_function(force=force)

    def _gbg_size_group_alpha(self, num_groups):
        """Makes the two (num_groups,) variables of the per-group logs, the previous step's alpha and the sum
        of the epoch's alphas, once per size, outside any step."""
        held = self._gbg_group_alpha_holder.value
        if held is None or held[0].shape[0] != num_groups:
            with _distribute.model_scope(self):
                self._gbg_group_alpha_holder.value = [
                    keras.Variable(np.zeros(num_groups, np.float32), dtype="float32", trainable=False,
                                   aggregation="only_first_replica", name=name)
                    for name in ("gbg_alpha_previous", "gbg_alpha_sum")]

    def _gbg_group_sample_weights(self, y, sample_weight, config):
        """The G per-example sample weights whose compiled loss is L_g (see `group_loss`), and which groups are
        present in the global batch: a list of G float32 (B,) tensors and a (G,) bool tensor.

        With Keras' `"sum_over_batch_size"` reduction (sum of w l over the B examples of the global batch,
        divided by B), example i of group g = g(y_i) gets, zero in the other groups,

        - `"mean"`: w_i * B / n_g, so L_g = (1 / n_g) sum_{i in B_g} w_i l_i;
        - `"class_balanced"`: w_i * B / (m_g * n_{y_i}), so
          L_g = (1 / m_g) sum_{c in g, n_c > 0} (1 / n_c) sum_{i: y_i = c} w_i l_i,

        with n_g, n_c the global-batch counts of group g and class c (summed over the replicas) and m_g the
        number of classes of g present in the global batch.
        """
        tf = _backend.import_tensorflow()
        grouping = config.grouping
        num_groups, num_classes = grouping.num_groups, grouping.num_classes
        labels = self._gbg_labels(y, num_classes)
        if config is self._gbg_own_config:
            # A checkpoint of a model with more groups could have loaded ids >= num_groups into `gbg_groups`.
            class_groups = tf.convert_to_tensor(self.gbg_groups)
            groups = _checks.labels_in_range(tf.gather(class_groups, labels), num_groups, argument="gbg_groups")
        else:
            class_groups = tf.constant(grouping.groups, tf.int32)
            groups = tf.gather(class_groups, labels)
        membership = tf.one_hot(groups, num_groups, dtype=tf.float32)  # (B, G)
        counts = _distribute.cross_replica_sum(tf.reduce_sum(membership, axis=0))  # global examples per group
        present = counts > 0.0
        base = (tf.ones_like(membership[:, 0]) if sample_weight is None
                else tf.cast(tf.reshape(sample_weight, [-1]), tf.float32))
        if self.group_loss == "mean":
            factors = tf.reduce_sum(counts) / tf.maximum(counts, 1.0)  # B / n_g
            return [base * membership[:, g] * factors[g] for g in range(num_groups)], present
        # class_balanced: global examples per class n_c, present classes per group m_g
        class_counts = _distribute.cross_replica_sum(
            tf.reduce_sum(tf.one_hot(labels, num_classes, dtype=tf.float32), axis=0))  # (C,)
        classes_present = tf.cast(class_counts > 0.0, tf.float32)
        per_group = tf.reduce_sum(tf.one_hot(class_groups, num_groups, dtype=tf.float32) * classes_present[:, None],
                                  axis=0)  # (G,) m_g
        denominators = tf.gather(per_group, groups) * tf.gather(class_counts, labels)  # m_{g(y_i)} n_{y_i} >= 1
        factors = tf.reduce_sum(counts) / tf.maximum(denominators, 1.0)  # B / (m_g n_{y_i})
        return [base * membership[:, g] * factors for g in range(num_groups)], present

    def _gbg_amortized(self, tape, scaled, group_losses, present, variables, settings):
        """The exact step on iterations 0, k, 2k, ...; between them one backward pass with the stored alpha.

        Returns the replica's gradients, alpha and the solve's relative gap (the stored one between solves).
        """
        tf = _backend.import_tensorflow()
        solve_now = tf.equal(tf.math.floormod(tf.cast(self.optimizer.iterations, tf.int64), self.solve_every), 0)
        present_f = tf.cast(present, tf.float32)
        stored = tf.where(present, tf.convert_to_tensor(self.gbg_alpha), 0.0)
        total = tf.reduce_sum(stored)
        reused = tf.where(total > 0.0, stored / tf.maximum(total, 1e-30),
                          present_f / tf.maximum(tf.reduce_sum(present_f), 1.0))

        def per_group():
            return [self._dense(tape.gradient(loss, variables), variables) for loss in scaled]

        def reuse():
            return self._weighted_backward(tape, scaled, reused, variables)

        if _distribute.num_replicas() == 1:
            # No synchronization: the whole solve sits in the cond.
            def solve():
                gradients = per_group()
                alpha, gap = _min_norm.solve_group_weights(self._gbg_solve_part(gradients), group_losses, present,
                                                           return_gap=True, **settings)
                return [tf.convert_to_tensor(g) for g in _min_norm.combine(alpha, gradients)], alpha, gap

            gradients, alpha, gap = tf.cond(solve_now, solve, lambda: (reuse(), reused, tf.zeros([], tf.float32)))
        elif getattr(self, "jit_compile", False) is True or _min_norm.solver_dtype() == tf.float32:
            # XLA-compiled replicas (jit_compile=True, TPUStrategy) need static shapes: the all-reduce of the
            # per-group gradients runs every step, with zeros between solves (a synchronization point cannot
            # sit inside the cond).
            per_group_or_zeros = tf.cond(solve_now, per_group,
                                         lambda: [[tf.zeros_like(v) for v in variables] for _ in scaled])
            reduced, losses = _min_norm.all_reduce_group_inputs(per_group_or_zeros, group_losses,
                                                                settings["normalization"])

            def solve():
                alpha, gap = _min_norm.solve_group_weights(self._gbg_solve_part(reduced), losses, present,
                                                           return_gap=True, **settings)
                return [tf.convert_to_tensor(g) for g in _min_norm.combine(alpha, per_group_or_zeros)], alpha, gap

            gradients, alpha, gap = tf.cond(solve_now, solve, lambda: (reuse(), reused, tf.zeros([], tf.float32)))
        else:
            # tf.distribute forbids a synchronization point inside a cond, so the all-reduce runs every step,
            # on a flat tensor whose size the cond decides: the G per-group gradients on solve steps, zero
            # elements between them (issue 19.3: no G x parameters zeros cross the replicas any more).
            shapes = [v.shape for v in variables]
            sizes = [int(np.prod(shape)) for shape in shapes]
            dtype = tf.convert_to_tensor(scaled[0]).dtype

            def flat_groups():
                return tf.concat([tf.reshape(tf.cast(leaf, dtype), [-1]) for g in per_group() for leaf in g], 0)

            local = tf.cond(solve_now, flat_groups, lambda: tf.zeros([0], dtype))
            summed = _distribute.cross_replica_sum(local)
            losses = group_losses
            if settings["normalization"] in ("loss", "loss+"):
                losses = _distribute.cross_replica_sum(tf.cast(tf.stack(group_losses), tf.float32))

            def unflatten(flat):
                leaves = tf.split(flat, sizes * len(scaled))
                return [[tf.reshape(leaves[g * len(sizes) + i], shape) for i, shape in enumerate(shapes)]
                        for g in range(len(scaled))]

            def solve():
                alpha, gap = _min_norm.solve_group_weights(self._gbg_solve_part(unflatten(summed)), losses, present,
                                                           return_gap=True, **settings)
                gradients = _min_norm.combine(alpha, unflatten(local))
                return [tf.cast(g, v.dtype) for g, v in zip(gradients, variables)], alpha, gap

            gradients, alpha, gap = tf.cond(solve_now, solve, lambda: (reuse(), reused, tf.zeros([], tf.float32)))
        # a solve on non-finite gradients (a float16 step the LossScaleOptimizer skips) keeps the stored alpha
        self.gbg_alpha.assign(tf.where(tf.logical_and(solve_now, tf.math.is_finite(gap)), alpha, self.gbg_alpha))
        return gradients, alpha, tf.where(solve_now, gap, 0.0)

    def _gbg_solve_part(self, per_group):
        """The part of G per-variable gradient lists that alpha is solved on: all of it (`"exact"`), or all but
        the `head_layer` weights (`"backbone"`, the GBG code's `get_group_g_grad_on_backbone`)."""
        if self.mode != "backbone":
            return per_group
        keep = self._gbg_backbone_positions(self.head_layer)
        return [[gradients[i] for i in keep] for gradients in per_group]

    def _gbg_backbone_positions(self, head_layer):
        head = {id(v) for v in self.get_layer(head_layer).trainable_weights}
        keep = [i for i, v in enumerate(self.trainable_weights) if id(v) not in head]
        if not keep:
            raise ValueError(f"mode='backbone' needs trainable weights outside `head_layer`={head_layer!r}: "
                             "use mode='exact'. Received a model whose only trainable weights are the head's")
        return keep

    def _gbg_labels(self, y, num_classes):
        tf = _backend.import_tensorflow()
        y = tf.convert_to_tensor(tf.nest.flatten(y)[0])
        if y.shape.rank is not None and y.shape.rank >= 2 and y.shape[-1] not in (None, 1):
            labels = tf.argmax(y, axis=-1, output_type=tf.int32)  # one-hot / probabilities
        else:
            labels = tf.cast(tf.reshape(y, [-1]), tf.int32)
        return _checks.labels_in_range(labels, num_classes, argument="y")

    def _weighted_backward(self, tape, scaled, alpha, variables):
        """grad sum_g alpha_g L_g in one backward pass: alpha enters as the losses' upstream gradients."""
        upstream = [keras.ops.cast(alpha[g], scaled[g].dtype) for g in range(len(scaled))]
        return self._dense(tape.gradient(scaled, variables, output_gradients=upstream), variables)

    @staticmethod
    def _dense(gradients, variables):
        tf = _backend.import_tensorflow()
        return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(gradients, variables)]


class _Holder:
    """A plain box, so that Keras' attribute tracking does not pick up the variable inside."""

    def __init__(self, value):
        self.value = value

