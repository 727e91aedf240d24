"""A cosine (normalized) linear classifier."""

import keras
from keras import ops

from keras_longtail._internal import validation as _validation

# Added to squared norms before the inverse square root, so all-zero features give zero logits.
EPSILON = 1e-12


@keras.saving.register_keras_serializable(package="keras_longtail")
class CosineClassifier(keras.layers.Layer):
    """Scaled cosine similarities between the features and one weight vector per class.

    logit_k = s · ⟨w̄_k, z̄⟩,   w̄_k = w_k / ‖w_k‖,   z̄ = z / ‖z‖

    so every logit lies in [−s, s] and the classifier cannot favour a class by
    the norm of its weights (the "cosine linear classifier" of Hou et al. 2019
    that the intra-class margin loss of dual-phase training assumes). There is
    no bias. The scale s is fixed; `IntraClassMarginLoss` needs the same value.

    Args:
        units: number of classes, >= 1.
        scale: s, > 0. Defaults to `16.0`.
        kernel_initializer: initializer of the (features, units) kernel.
            Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer of the kernel. Defaults to `None`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: features of shape `(batch, features)`.

    Returns:
        Logits of shape `(batch, units)`.

    Example:

    ```python
    outputs = CosineClassifier(10, scale=16.0, name="classifier")(features)
    model.compile("sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ```

    >>> import numpy as np
    >>> layer = CosineClassifier(2, scale=10.0)
    >>> layer.build((None, 2))
    >>> _ = layer.kernel.assign([[3.0, 0.0], [0.0, 0.5]])
    >>> np.round(np.asarray(layer(np.array([[2.0, 2.0], [0.0, 4.0]]))), 4)
    array([[ 7.0711,  7.0711],
           [ 0.    , 10.    ]], dtype=float32)

    References:
        - Hou et al., "Learning a Unified Classifier Incrementally via
          Rebalancing", CVPR 2019.
    """

    def __init__(self, units, scale=16.0, kernel_initializer="glorot_uniform", kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = _validation.check_int("units", units, minimum=1)
        self.scale = _validation.check_float("scale", scale, minimum=0.0, min_inclusive=False)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer)

    def call(self, inputs):
        num_features = self.kernel.shape[0]
        if inputs.shape[-1] != num_features:
            raise ValueError(
                f"Expected features of size {num_features} in the last axis (the layer was built on "
                f"{num_features}). Received: inputs with shape {tuple(inputs.shape)}")
        inputs = ops.cast(inputs, self.compute_dtype)
        features = inputs * ops.rsqrt(ops.maximum(ops.sum(ops.square(inputs), axis=-1, keepdims=True), EPSILON))
        kernel = ops.cast(self.kernel, self.compute_dtype)
        kernel = kernel * ops.rsqrt(ops.maximum(ops.sum(ops.square(kernel), axis=0, keepdims=True), EPSILON))
        return self.scale * ops.matmul(features, kernel)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "scale": self.scale,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)
            if self.kernel_regularizer is not None else None,
        })
        return config
