"""Records the per-class weight norms of a classifier during training."""

import keras
import numpy as np

from keras_longtail._internal import validation as _validation
from keras_longtail.weight_balancing.per_class_max_norm import _check_axis
from keras_longtail.weight_balancing.per_class_max_norm import _norms
from keras_longtail.weight_balancing.per_class_max_norm_projection import _resolve_layer


class WeightNormMonitor(keras.callbacks.Callback):
    """Records the L2 norm of every class vector of a classifier, once per epoch.

    For a Dense kernel of shape `(features, classes)` the norm of class k is
    ‖θ_k‖₂ over the features (`axis=0`). The norms are read when a `fit` begins
    (only if nothing was recorded yet: the untrained or loaded classifier) and
    after every epoch (after other callbacks of the epoch, such as
    `PerClassMaxNormProjection`, when this one comes last in `callbacks`).
    Records accumulate over successive `fit` calls, so one monitor passed to a
    first stage and then to `keras_longtail.training.retrain_classifier` traces
    the whole two-stage run; the layer is looked up by name at each `fit`.
    `reset()` clears them.

    The smallest and largest norms are added to the epoch logs as
    `{layer}_norm_min` and `{layer}_norm_max`.

    Args:
        layer: the layer, or the name of a layer of the model, whose `kernel` is
            measured. Defaults to `"classifier"`.
        axis: axis (or axes) of one class vector in the kernel. Defaults to `0`.

    Attributes:
        norms: list of 1-D arrays, one per record, each with one norm per class.
        epochs: list of the epoch (counted over all recorded `fit` calls, 0 =
            before training) of each record.

    Example:

    ```python
    monitor = WeightNormMonitor("classifier")
    model.fit(x, y, epochs=30, callbacks=[monitor])
    monitor.plot(class_counts)     # norms vs class (sorted by count) over epochs
    ```

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="classifier")])
    >>> model.get_layer("classifier").set_weights([np.array([[3.0, 0.0], [4.0, 1.0]]), np.zeros(2)])
    >>> model.compile(keras.optimizers.SGD(0.0), "mse")
    >>> monitor = WeightNormMonitor("classifier")
    >>> _ = model.fit(np.zeros((4, 2)), np.zeros((4, 2)), epochs=2, verbose=0, callbacks=[monitor])
    >>> monitor.epochs, monitor.history()[-1]
    ([0, 1, 2], array([5., 1.]))

    References:
        - Alshammari et al., "Long-Tailed Recognition via Weight Balancing",
          CVPR 2022, arXiv:2203.14197 (Fig. 2, Fig. 6).
    """

    def __init__(self, layer="classifier", axis=0):
        super().__init__()
        if not isinstance(layer, (str, keras.layers.Layer)):
            raise TypeError(f"Expected `layer` to be a layer or a layer name. Received: layer={layer!r}")
        self.layer = layer
        self.axis = _check_axis(axis)
        self.norms = []
        self.epochs = []
        self._layer = None

    def reset(self):
        """Clears the records."""
        self.norms, self.epochs = [], []

    def history(self):
        """The records as an array of shape `(records, classes)`."""
        return np.stack(self.norms) if self.norms else np.zeros((0, 0))

    def _record(self, epoch):
        self.norms.append(_norms(self._layer.kernel, self.axis))
        self.epochs.append(epoch)

    def on_train_begin(self, logs=None):
        self._layer = _resolve_layer(self.model, self.layer)
        if not self.norms:
            self._record(0)

    def on_epoch_end(self, epoch, logs=None):
        self._record(self.epochs[-1] + 1)
        if logs is not None:
            name = self._layer.name
            logs[f"{name}_norm_min"] = float(self.norms[-1].min())
            logs[f"{name}_norm_max"] = float(self.norms[-1].max())

    def plot(self, class_counts=None, ax=None, title=None):
        """Draws the norms as an image: classes (sorted by training count, largest on top) vs epochs.

        The picture of the paper's Fig. 2. Needs matplotlib.

        Args:
            class_counts: optional per-class training counts; classes are sorted
                by them (largest first). Defaults to `None` (label order).
            ax: matplotlib axes to draw on. Defaults to a new figure.
            title: optional axes title.

        Returns:
            The matplotlib `AxesImage`.
        """
        import matplotlib.pyplot as plt

        norms = self.history()
        if not len(norms):
            raise ValueError("WeightNormMonitor.plot: nothing recorded yet (pass the monitor to `fit` first).")
        order = np.arange(norms.shape[1])
        if class_counts is not None:
            counts = _validation.check_class_counts("class_counts", class_counts)
            if len(counts) != norms.shape[1]:
                raise ValueError(
                    f"Expected `class_counts` with {norms.shape[1]} entries, one per class. "
                    f"Received {len(counts)}: class_counts={class_counts!r}")
            order = np.argsort(-np.asarray(counts), kind="stable")
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        image = ax.imshow(norms[:, order].T, aspect="auto", origin="upper", cmap="viridis", interpolation="nearest",
                          extent=(self.epochs[0] - 0.5, self.epochs[-1] + 0.5, norms.shape[1] - 0.5, -0.5))
        ax.set_xlabel("epoch")
        ax.set_ylabel("class (sorted by count, common on top)" if class_counts is not None else "class")
        if title:
            ax.set_title(title)
        ax.figure.colorbar(image, ax=ax, label="‖θ_k‖₂")
        return image
