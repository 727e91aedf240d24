"""Per-epoch distribution of the GradTail weights."""

import numpy as np

import keras


class GradTailWeightLogger(keras.callbacks.Callback):
    """Records the histogram of the GradTail weights q used in each training epoch.

    The train step counts every (pseudo-)example's weight in 10 equal bins
    over [1, max_weight] (summed over replicas). The callback resets the
    counts at the start of each epoch and, at its end, appends
    `{"epoch", "bin_edges", "counts", "mean"}` to `history` (the mean is taken
    from the bin centres); with `verbose=1` it also prints the fractions.

    Args:
        verbose: 0 (silent) or 1 (print a line per epoch). Defaults to `0`.

    Example:

    ```python
    logger = GradTailWeightLogger()
    model.fit(x, y, epochs=10, callbacks=[logger])
    logger.history[-1]["counts"]  # how many examples got each weight range in the last epoch
    ```
    """

    def __init__(self, verbose=0):
        super().__init__()
        if verbose not in (0, 1):
            raise ValueError(f"Expected `verbose` in [0, 1]. Received: verbose={verbose!r}")
        self.verbose = verbose
        self.history = []

    def _histogram(self):
        histogram = getattr(self.model, "gradtail_weight_histogram", None)
        if histogram is None:
            raise ValueError("GradTailWeightLogger needs a GradTail model (GradTailModel or a GradTailMixin "
                             f"subclass). Received: model={type(self.model).__name__}")
        return histogram

    def on_train_begin(self, logs=None):
        self._histogram()

    def on_epoch_begin(self, epoch, logs=None):
        self._histogram().reset_state()

    def on_epoch_end(self, epoch, logs=None):
        histogram = self._histogram()
        counts = np.asarray(keras.ops.convert_to_numpy(histogram.result()), dtype=np.float64)
        edges = histogram.bin_edges()
        centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
        total = counts.sum()
        mean = float(np.dot(counts, centres) / total) if total else float("nan")
        self.history.append({"epoch": int(epoch), "bin_edges": edges, "counts": counts.tolist(), "mean": mean})
        if self.verbose:
            fractions = " ".join(f"{c / total:.3f}" if total else "-" for c in counts)
            print(f"GradTail weights, epoch {epoch + 1}: bins {edges[0]:.2f}..{edges[-1]:.2f} fractions {fractions}")
