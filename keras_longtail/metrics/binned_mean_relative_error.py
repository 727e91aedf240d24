"""Mean relative depth error per ground-truth distance bin."""

import math
import numbers

import keras
from keras import ops

from keras_longtail._internal.dense import standardize_depth_maps
from keras_longtail._internal.dense import valid_pixels


def _edge(value):
    return format(value, "g")


@keras.saving.register_keras_serializable(package="keras_longtail")
class BinnedMeanRelativeError(keras.metrics.Metric):
    """Mean relative error (%) of depth, per distance bin of the ground truth and in total.

    GradTail Table 2 reports it for < 20 m, 20-40 m, 40-60 m and > 60 m. With the
    ground-truth mask m_p = [y_p > 0] (pixels without ground truth, y_p <= 0 or
    NaN, never count, whatever the prediction there) and bin edges
    0 < b_1 < ... < b_K, pixel p falls in bin k when b_k <= y_p < b_{k+1}
    (b_0 = 0, b_{K+1} = ∞), and

    MRE_k = 100 · Σ_{p in bin k} w_p·|ŷ_p − y_p| / y_p  /  Σ_{p in bin k} w_p
    MRE_total = the same over all valid pixels

    with w_p the sample weight of p's example (1 by default). Sums of relative
    errors and of weights per bin are sum-aggregated variables accumulated over
    all pixels of all batches (pixel-weighted, not a mean of per-image means), so
    the result under `tf.distribute` equals one device. A bin with no pixel reads 0.

    Args:
        bins: increasing positive bin edges in metres. Defaults to `(20, 40, 60)`.
        name: prefix of the reported keys. Defaults to `"mre"`.
        dtype: dtype of the sums. Defaults to `None` (float32).

    Call arguments (`update_state`):
        y_true: depth maps `(batch, H, W)` or `(batch, H, W, 1)`, 0 = no ground truth.
        y_pred: predicted depth maps of the same shape.
        sample_weight: optional per-example `(batch,)` or per-pixel weights.

    Returns:
        A dict of scalars (percent), e.g. for the default bins `mre_lt_20`,
        `mre_20_40`, `mre_40_60`, `mre_gt_60` and `mre_total`.

    Example:

    ```python
    model.compile(keras.optimizers.Adam(2e-4), loss=MaskedL1(),
                  metrics=[BinnedMeanRelativeError()])
    ```

    >>> metric = BinnedMeanRelativeError(bins=(20, 40, 60))
    >>> y_true = [[[10.0, 0.0], [50.0, 70.0]]]   # the 0 pixel has no ground truth
    >>> y_pred = [[[11.0, 5.0], [45.0, 70.0]]]
    >>> metric.update_state(y_true, y_pred)
    >>> {k: round(float(v), 2) for k, v in metric.result().items()}
    {'mre_lt_20': 10.0, 'mre_20_40': 0.0, 'mre_40_60': 10.0, 'mre_gt_60': 0.0, 'mre_total': 6.67}
    """

    def __init__(self, bins=(20, 40, 60), name="mre", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(bins, (str, bytes)) or not hasattr(bins, "__len__") or len(bins) == 0:
            raise ValueError(f"Expected `bins` to be a non-empty sequence of increasing positive edges. "
                             f"Received: bins={bins!r}")
        edges = []
        for edge in bins:
            if isinstance(edge, bool) or not isinstance(edge, numbers.Real) or not math.isfinite(edge) or edge <= 0:
                raise ValueError(f"Expected `bins` to hold finite positive numbers. Received: bins={bins!r}")
            edges.append(float(edge))
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError(f"Expected `bins` to be strictly increasing. Received: bins={bins!r}")
        self.bins = edges
        self._lower = [0.0] + edges
        self._upper = edges + [math.inf]
        self.error_sum = self.add_variable(shape=(len(edges) + 1,), initializer="zeros", dtype=self.dtype,
                                           aggregation="sum", name="error_sum")
        self.weight_sum = self.add_variable(shape=(len(edges) + 1,), initializer="zeros", dtype=self.dtype,
                                            aggregation="sum", name="weight_sum")

    def bin_names(self):
        """The result keys of the bins, in order (without the total)."""
        names = [f"{self.name}_lt_{_edge(self.bins[0])}"]
        names += [f"{self.name}_{_edge(a)}_{_edge(b)}" for a, b in zip(self.bins, self.bins[1:])]
        return names + [f"{self.name}_gt_{_edge(self.bins[-1])}"]

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = standardize_depth_maps(y_true, y_pred)
        mask = valid_pixels(y_true)
        valid = mask > 0
        safe_true = ops.where(valid, y_true, ops.ones_like(y_true))
        relative = ops.where(valid, ops.abs(y_pred - safe_true) / safe_true, ops.zeros_like(y_true))
        weight = mask
        if sample_weight is not None:
            sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
            if len(sample_weight.shape) == len(y_true.shape) + 1 and sample_weight.shape[-1] == 1:
                sample_weight = ops.squeeze(sample_weight, axis=-1)
            if len(sample_weight.shape) == 1:
                sample_weight = ops.reshape(sample_weight, (-1,) + (1,) * (len(y_true.shape) - 1))
            weight = weight * ops.broadcast_to(sample_weight, ops.shape(y_true))
        errors, weights = [], []
        for lower, upper in zip(self._lower, self._upper):
            in_bin = ops.cast(y_true >= lower, "float32")
            if math.isfinite(upper):
                in_bin = in_bin * ops.cast(y_true < upper, "float32")
            in_bin = in_bin * weight
            errors.append(ops.sum(in_bin * relative))
            weights.append(ops.sum(in_bin))
        self.error_sum.assign_add(ops.cast(ops.stack(errors), self.dtype))
        self.weight_sum.assign_add(ops.cast(ops.stack(weights), self.dtype))

    def result(self):
        per_bin = 100.0 * ops.divide_no_nan(self.error_sum, self.weight_sum)
        results = {name: per_bin[k] for k, name in enumerate(self.bin_names())}
        results[f"{self.name}_total"] = 100.0 * ops.divide_no_nan(ops.sum(self.error_sum), ops.sum(self.weight_sum))
        return results

    def reset_state(self):
        self.error_sum.assign(ops.zeros(self.error_sum.shape, dtype=self.error_sum.dtype))
        self.weight_sum.assign(ops.zeros(self.weight_sum.shape, dtype=self.weight_sum.dtype))

    def get_config(self):
        return {"bins": list(self.bins), "name": self.name, "dtype": self.dtype}
