"""Per-image random crop after zero padding: the CIFAR recipe's translation, inside the model."""

import keras
from keras import ops

from keras_longtail._internal import validation as _validation


@keras.saving.register_keras_serializable(package="keras_longtail")
class PaddedRandomCrop(keras.layers.Layer):
    """Zero-pads each image by `padding` pixels per side and crops it back at a random offset, per image.

    y_b[i, j, :] = pad(x_b)[i + dy_b, j + dx_b, :],   dy_b, dx_b ~ U{0, ..., 2 * padding}

    independently for every image b of the batch (pad: `padding` zeros on each side of
    the height and width). This is the CIFAR recipe's random crop (`RandomCrop(32,
    padding=4)` in the papers' PyTorch code, `recipes.crop_and_flip` in `tf.data`), as a
    layer, so that the augmentation runs inside the compiled training step (on the
    accelerator, under XLA) instead of in the host's input pipeline. Keras' own
    `keras.layers.RandomCrop` draws one offset for the whole batch, and
    `keras.layers.RandomTranslation` draws continuous shifts and resamples. Add
    `keras.layers.RandomFlip("horizontal")` for the recipe's flip.

    Outside training (`training=False`: `predict`, `evaluate`, inference) the layer is
    the identity. The crop is a product with one-hot row and column selection matrices
    (exact: each output value is one input value), in the layer's compute dtype. Under
    `tf.distribute` every replica draws from the same seed state, as Keras' own random
    layers do.

    Args:
        padding: zero pixels added on each side before the crop, >= 0; `0` is the
            identity. Defaults to `4`.
        seed: optional integer seed of the offsets. Defaults to `None` (drawn from
            Keras' global seed, `keras.utils.set_random_seed`).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: images of shape `(batch, height, width, channels)` with static height
            and width.
        training: whether to crop. Defaults to `None` (Keras' training flag: on in
            `fit`).

    Returns:
        Images of the input's shape, in the layer's compute dtype.

    Example:

    ```python
    inputs = keras.Input((32, 32, 3))
    x = PaddedRandomCrop(4)(inputs)
    x = keras.layers.RandomFlip("horizontal")(x)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    ```

    >>> import numpy as np
    >>> image = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    >>> crop = PaddedRandomCrop(1, seed=0)
    >>> bool(np.all(np.asarray(crop(image, training=False)) == image))
    True
    >>> out = np.asarray(crop(image, training=True))[0, :, :, 0]
    >>> padded = np.pad(image[0, :, :, 0], 1)
    >>> any(np.array_equal(out, padded[dy:dy + 3, dx:dx + 3]) for dy in range(3) for dx in range(3))
    True

    References:
        - He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
          (arXiv:1512.03385), Section 4.2: "4 pixels are padded on each side, and
          a 32x32 crop is randomly sampled from the padded image".
    """

    def __init__(self, padding=4, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _validation.check_int("padding", padding, minimum=0)
        self.seed = None if seed is None else _validation.check_int("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        if input_shape[1] is None or input_shape[2] is None:
            raise ValueError("Expected images with a static height and width. "
                             f"Received: input_shape={tuple(input_shape)}")

    def call(self, inputs, training=None):
        inputs = ops.cast(inputs, self.compute_dtype)
        if not training or self.padding == 0:
            return inputs
        height, width = inputs.shape[1], inputs.shape[2]
        span = 2 * self.padding + 1
        batch = ops.shape(inputs)[0]
        padded = ops.pad(inputs, [[0, 0], [self.padding, self.padding], [self.padding, self.padding], [0, 0]])
        offsets = keras.random.randint((batch, 2), 0, span, seed=self.seed_generator)
        rows = ops.one_hot(offsets[:, :1] + ops.arange(height)[None, :], height + span - 1,
                           dtype=self.compute_dtype)  # (B, H, H + 2p)
        columns = ops.one_hot(offsets[:, 1:] + ops.arange(width)[None, :], width + span - 1,
                              dtype=self.compute_dtype)  # (B, W, W + 2p)
        cropped = ops.einsum("bik,bklc->bilc", rows, padded)  # rows selected: (B, H, W + 2p, C)
        return ops.einsum("bjl,bilc->bijc", columns, cropped)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "seed": self.seed}
