"""The layer that holds GALA's gradient statistics as model weights."""

import threading

import keras
from keras import ops

# The GALAStatistics layers called in this thread, by name: a `GALALoss(statistics="<name>")` rebuilt from a
# config (a reloaded `.keras` model) binds to the layer its model called just before the loss.
_CALLED = threading.local()


def called_layer(name):
    """The `GALAStatistics` layer named `name` most recently called in this thread, or `None`."""
    return getattr(_CALLED, "layers", {}).get(name)


@keras.saving.register_keras_serializable(package="keras_longtail")
class GALAStatistics(keras.layers.Layer):
    """Holds the statistics θ, φ of a `GALALoss` as model weights; passes the logits through unchanged.

    Placed on a classifier's logits and passed to the loss,
    `GALALoss(num_classes, statistics=layer)`, it owns the state that
    `GALALoss` otherwise keeps in the loss object:

    - `theta` (C,): θ_k, the accumulated positive gradients of class k,
    - `phi` (C,): φ_k, the accumulated negative gradients of class k's examples,
    - `running` (2, C): the running totals S^θ, S^φ of `accumulation="official"`
      (zeros with `"paper"`),

    as non-trainable float32 weights. The loss reads and updates them inside the
    train step exactly as it updates its own variables (sums over the global
    batch, all-reduced under `tf.distribute`, compiled under `jit_compile=True`),
    so training is the same to float rounding. Being model weights, they are
    saved in `.keras` files and weight checkpoints and restored by Keras' own
    `keras.callbacks.BackupAndRestore` and `model.load_weights`. The layer's
    output is its input (values unchanged; computed in float32 by default), so
    `predict` returns the plain logits.

    A model reloaded from `.keras` rebuilds its loss from the config, which names
    the layer (`statistics="<layer name>"`): the loss binds to the layer of that
    name the first time the model calls both in a step (the layer is called on
    the logits just before the loss), so the reloaded model continues from the
    saved statistics.

    Which to use: `model.compile(loss=GALALoss(...))` alone is the one-line path;
    its statistics live in the loss and are lost on `.keras` save/load (and need
    `keras_longtail.callbacks.BackupAndRestore` to survive an interruption). Add
    this layer when the statistics must travel with the model: saving and
    resuming, Keras' `BackupAndRestore`, checkpoints.

    Args:
        **kwargs: base layer arguments (`name`, ...). `dtype` defaults to
            `"float32"` (the logits are passed through in float32, exactly: an
            upcast from float16/bfloat16 does not change a value).

    Call arguments:
        inputs: logits of shape `(batch, num_classes)`, num_classes >= 2.

    Returns:
        The logits, unchanged.

    Example:

    ```python
    statistics = GALAStatistics(name="gala_statistics")
    model = keras.Model(inputs, statistics(logits))
    model.compile("sgd", loss=GALALoss(num_classes=10, statistics=statistics))
    model.fit(x, y, callbacks=[keras_longtail.callbacks.GALAAccumulator(),
                               keras.callbacks.BackupAndRestore("/tmp/backup")])
    ```

    >>> import numpy as np
    >>> from keras_longtail.losses import GALALoss
    >>> statistics = GALAStatistics()
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), statistics])
    >>> model.compile("sgd", loss=GALALoss(num_classes=3, statistics=statistics))
    >>> _ = model.fit(np.ones((6, 4)), np.arange(6) % 3, verbose=0)
    >>> bool(statistics.theta.numpy().sum() > 0)  # accumulated in the layer's weights
    True
    >>> [w.name for w in model.non_trainable_weights]
    ['theta', 'phi', 'running']

    References:
        - Zhang et al., "Gradient-Aware Logit Adjustment Loss for Long-tailed
          Classifier", ICASSP 2024, arXiv:2403.09036.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.theta = None
        self.phi = None
        self.running = None

    def build(self, input_shape):
        num_classes = input_shape[-1]
        if len(input_shape) != 2 or num_classes is None or num_classes < 2:
            raise ValueError(
                "Expected logits of shape (batch, num_classes) with num_classes >= 2. "
                f"Received: input_shape={tuple(input_shape)}")

        def state(shape, name):
            # Assigned inside the replica step from all-reduced values (equal on every replica):
            # "only_first_replica" lets a replica assign a mirrored variable.
            return self.add_weight(shape=shape, initializer="zeros", dtype="float32", trainable=False,
                                   autocast=False, aggregation="only_first_replica", name=name)

        self.theta = state((num_classes,), "theta")
        self.phi = state((num_classes,), "phi")
        self.running = state((2, num_classes), "running")

    @property
    def num_classes(self):
        """The number of classes (known once the layer is built), else `None`."""
        return None if self.theta is None else int(self.theta.shape[0])

    def reset_state(self):
        """Sets θ, φ and the running totals back to zero."""
        for variable in (self.theta, self.phi, self.running):
            if variable is not None:
                variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))

    def call(self, inputs):
        if len(inputs.shape) != 2 or inputs.shape[-1] != self.num_classes:
            raise ValueError(
                f"Expected logits of shape (batch, {self.num_classes}): the layer was built on "
                f"{self.num_classes} classes. Received: inputs with shape {tuple(inputs.shape)}")
        layers = getattr(_CALLED, "layers", None)
        if layers is None:
            layers = _CALLED.layers = {}
        layers[self.name] = self
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape
