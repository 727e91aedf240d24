"""Per-epoch MaxNorm projection of a classifier (the weight-balancing code's PGD)."""

import keras

from keras_longtail._internal import validation as _validation
from keras_longtail.weight_balancing.per_class_max_norm import PerClassMaxNorm
from keras_longtail.weight_balancing.per_class_max_norm import _check_axis

FREQUENCIES = ("epoch", "batch")


def _resolve_layer(model, layer):
    """`layer` itself, or the layer of `model` named `layer`, checked to have a kernel."""
    if isinstance(layer, str):
        try:
            layer = model.get_layer(layer)
        except ValueError as error:
            raise ValueError(
                f"Expected `layer` to name a layer of the model. Received: layer={layer!r} "
                f"(model {model.name!r} has {[l.name for l in model.layers]})") from error
    if getattr(layer, "kernel", None) is None:
        raise ValueError(
            f"Expected `layer` to have a `kernel` (e.g. a Dense classifier). Received: layer={layer!r}")
    return layer


class PerClassMaxNormProjection(keras.callbacks.Callback):
    """Projects a layer's class vectors onto an L2 ball after every epoch (or batch).

    The projection of `PerClassMaxNorm`, θ_k ← min(1, δ / ‖θ_k‖₂) · θ_k, applied
    from outside the train step: after each epoch's steps (`frequency="epoch"`,
    what the weight-balancing code does in its second stage) or after each batch
    (`frequency="batch"`; for per-step projection inside the compiled step
    prefer `kernel_constraint=PerClassMaxNorm(...)`: a callback runs on the
    host once per `steps_per_execution` steps, so on a TPU with
    `steps_per_execution=50` "batch" means every 50 steps). The bias is not
    constrained.

    δ is either given (`max_norm`) or set from the layer's kernel when training
    first begins, δ = min r + thresh · (max r − min r) over its per-class norms r
    (the code's `setPerLayerThresh`, called once on the first-stage classifier);
    it is then kept for later `fit` calls (`max_norm_`) and written to the logs
    as `max_norm` at the end of each epoch.

    Restarts: δ is set when `fit` hands the callback its model, before any
    callback's `on_train_begin`, so a restarted process that rebuilds the
    model from the same first-stage weights gets the same δ whichever side of
    a `BackupAndRestore` the callback is listed on (the restore would
    otherwise change the kernel δ is taken from); and an epoch after the first
    also starts with a projection, which changes nothing in an uninterrupted
    run (the kernel was projected at the end of the previous epoch) but
    projects a checkpoint saved before that end-of-epoch projection.

    The kernel is assigned in the cross-replica context, so under `tf.distribute`
    every replica receives the projected value.

    Args:
        layer: the layer, or the name of a layer of the model (e.g.
            `"classifier"`), whose `kernel` is projected.
        max_norm: the radius δ > 0, or `None` to set it from the kernel with
            `thresh`. Defaults to `None`.
        thresh: used when `max_norm` is `None`, in [0, 1]. Defaults to `0.1`.
        axis: axis (or axes) of one class vector in the kernel. Defaults to `0`
            (Dense kernel `(features, classes)`).
        frequency: `"epoch"` or `"batch"`. Defaults to `"epoch"`.

    Example:

    ```python
    model.fit(x, y, epochs=10,
              callbacks=[PerClassMaxNormProjection("classifier", thresh=0.1)])
    ```

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="classifier")])
    >>> model.get_layer("classifier").set_weights([np.array([[3.0, 0.3], [4.0, 0.4]]), np.zeros(2)])
    >>> model.compile(keras.optimizers.SGD(0.0), "mse")
    >>> projection = PerClassMaxNormProjection("classifier", thresh=0.1)
    >>> _ = model.fit(np.zeros((4, 2)), np.zeros((4, 2)), verbose=0, callbacks=[projection])
    >>> round(projection.max_norm_, 4)  # 0.5 + 0.1 * (5 - 0.5)
    0.95
    >>> np.linalg.norm(model.get_layer("classifier").kernel.numpy(), axis=0).round(4)
    array([0.95, 0.5 ], dtype=float32)

    References:
        - Alshammari et al., "Long-Tailed Recognition via Weight Balancing",
          CVPR 2022, arXiv:2203.14197 (Eq. 5; official code, `MaxNorm_via_PGD`).
    """

    def __init__(self, layer, max_norm=None, thresh=0.1, axis=0, frequency="epoch"):
        super().__init__()
        if not isinstance(layer, (str, keras.layers.Layer)):
            raise TypeError(f"Expected `layer` to be a layer or a layer name. Received: layer={layer!r}")
        self.layer = layer
        self.max_norm = None if max_norm is None else _validation.check_float(
            "max_norm", max_norm, minimum=0.0, min_inclusive=False)
        self.thresh = _validation.check_float("thresh", thresh, minimum=0.0, maximum=1.0)
        self.axis = _check_axis(axis)
        self.frequency = _validation.check_choice("frequency", frequency, FREQUENCIES)
        self.max_norm_ = self.max_norm
        self._layer = None
        self._constraint = None

    def set_model(self, model):
        super().set_model(model)
        self._layer = self._constraint = None
        # `fit` sets the model of every callback before any `on_train_begin`: δ taken here comes from the
        # kernel `fit` starts with, before a `BackupAndRestore` listed earlier restores a checkpoint.
        try:
            built = getattr(_resolve_layer(model, self.layer), "kernel", None) is not None
        except ValueError:
            built = False  # not built yet (or no such layer): `on_train_begin` resolves it, or says why not
        if built:
            self._set_up()

    def on_train_begin(self, logs=None):
        if self._constraint is None:
            self._set_up()

    def _set_up(self):
        self._layer = _resolve_layer(self.model, self.layer)
        if self.max_norm_ is None:
            self._constraint = PerClassMaxNorm.from_kernel(self._layer.kernel, thresh=self.thresh, axis=self.axis)
            self.max_norm_ = self._constraint.max_norm
        else:
            self._constraint = PerClassMaxNorm(self.max_norm_, axis=self.axis)

    def project(self):
        """Applies the projection to the layer's kernel now."""
        kernel = self._layer.kernel
        kernel.assign(self._constraint(kernel))

    def on_train_batch_end(self, batch, logs=None):
        if self.frequency == "batch":
            self.project()

    def on_epoch_begin(self, epoch, logs=None):
        if self.frequency == "epoch" and epoch > 0:
            # A no-op after the previous epoch's projection (up to rounding), except when the run resumes
            # from a checkpoint saved before that projection (a `BackupAndRestore` listed earlier).
            self.project()

    def on_epoch_end(self, epoch, logs=None):
        if self.frequency == "epoch":
            self.project()
        if logs is not None:
            logs["max_norm"] = self.max_norm_
