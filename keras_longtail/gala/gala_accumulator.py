"""Keeps GALA's gradient statistics to the training batches."""

import keras

from keras_longtail.gala.gala_loss import GALALoss


class GALAAccumulator(keras.callbacks.Callback):
    """Lets `GALALoss` accumulate its statistics on training batches only.

    Keras computes the compiled loss in evaluation too (validation data in `fit`,
    `evaluate`), and a loss cannot tell the two apart. This callback finds every
    `GALALoss` in `model.loss` and switches its `accumulating` flag (a variable
    the train step reads) off while Keras evaluates and back on for training:

    - `on_train_begin`, `on_test_end` during `fit`: `accumulating = 1`
    - `on_test_begin`: `accumulating = 0`
    - `on_train_end`: the flag returns to its value before `fit`

    The statistics are never reset by the callback (the official code keeps them
    for the whole run, and a second `fit` continues them); call
    `loss.reset_state()` to start over. The flag belongs to the loss, so the
    callback works the same whether the statistics live in the loss or in a
    `keras_longtail.layers.GALAStatistics` layer.

    Raises:
        ValueError: at the start of training when the model's loss holds no
            `GALALoss`.

    Example:

    ```python
    model.compile("sgd", loss=GALALoss(num_classes=10))
    model.fit(x, y, validation_data=(x_val, y_val), callbacks=[GALAAccumulator()])
    model.evaluate(x_test, y_test, callbacks=[GALAAccumulator()])
    ```

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> loss = GALALoss(num_classes=3)
    >>> model.compile("sgd", loss=loss)
    >>> x, y = np.ones((8, 4)), np.arange(8) % 3
    >>> _ = model.evaluate(x, y, callbacks=[GALAAccumulator()], verbose=0)
    >>> float(loss.theta.numpy().sum())  # evaluation added nothing
    0.0
    """

    def __init__(self):
        super().__init__()
        self._losses = []
        self._flags_before = []
        self._training = False

    def _find_losses(self):
        losses = [loss for loss in keras.tree.flatten(getattr(self.model, "loss", None))
                  if isinstance(loss, GALALoss)]
        if not losses:
            raise ValueError(
                "GALAAccumulator needs a model compiled with a GALALoss. "
                f"Received: model.loss={getattr(self.model, 'loss', None)!r}")
        return losses

    def _set(self, value):
        for loss in self._losses:
            loss.accumulating.assign(value)

    def on_train_begin(self, logs=None):
        self._losses = self._find_losses()
        self._flags_before = [float(loss.accumulating.numpy()) for loss in self._losses]
        self._training = True
        self._set(1.0)

    def on_train_end(self, logs=None):
        for loss, flag in zip(self._losses, self._flags_before):
            loss.accumulating.assign(flag)
        self._training = False

    def on_test_begin(self, logs=None):
        if not self._training:
            # `evaluate` on its own: remember the flag to restore it afterwards.
            self._losses = self._find_losses()
            self._flags_before = [float(loss.accumulating.numpy()) for loss in self._losses]
        self._set(0.0)

    def on_test_end(self, logs=None):
        if self._training:
            self._set(1.0)
        else:
            for loss, flag in zip(self._losses, self._flags_before):
                loss.accumulating.assign(flag)
