"""The histogram of GradTail's weights q per epoch: a vector metric, read by `GradTailWeightLogger`."""

import keras
from keras import ops

HISTOGRAM_BINS = 10
_TINY = 1e-12


class WeightHistogram(keras.metrics.Metric):
    """Counts of the GradTail weights in `HISTOGRAM_BINS` equal bins over [1, max_weight].

    Weights outside [1, max_weight] fall in the first or last bin; each weight
    counts with its `sample_weight` (0 for padding pseudo-examples). The counts
    are summed over replicas when read (Keras metric variables). Not logged by
    `fit` (a vector): `GradTailMixin.metrics` leaves it out.
    """

    def __init__(self, max_weight, name="gradtail_weight_histogram"):
        super().__init__(name=name)
        self.max_weight = max_weight
        self.counts = self.add_variable(shape=(HISTOGRAM_BINS,), initializer="zeros", name="counts")

    def update_state(self, weights, sample_weight):
        span = max(self.max_weight - 1.0, _TINY)
        index = ops.cast(ops.floor((weights - 1.0) / span * HISTOGRAM_BINS), "int32")
        index = ops.clip(index, 0, HISTOGRAM_BINS - 1)
        one_hot = ops.one_hot(index, HISTOGRAM_BINS, dtype="float32") * sample_weight[:, None]
        self.counts.assign_add(ops.sum(one_hot, axis=0))

    def result(self):
        return ops.convert_to_tensor(self.counts)

    def bin_edges(self):
        """The `HISTOGRAM_BINS + 1` bin edges, from 1 to `max_weight` (Python floats)."""
        span = self.max_weight - 1.0
        return [1.0 + span * i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)]
