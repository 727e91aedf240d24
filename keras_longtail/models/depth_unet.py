"""A MobileNet-style encoder with a U-Net-like decoder for monocular depth."""

import keras
from keras import layers

from keras_longtail._internal import validation as _validation

ENCODER_FILTERS = (16, 24, 40, 80, 160)
DECODER_FILTERS = (80, 40, 24, 16, 16)


def _synchronized_batch_norm():
    """`synchronized=True` where Keras supports it (TensorFlow), else False."""
    return keras.backend.backend() == "tensorflow"


def _separable_block(x, filters, strides, name):
    """MobileNet depthwise-separable unit: 3x3 depthwise, BN, ReLU6, 1x1 conv, BN, ReLU6."""
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(synchronized=_synchronized_batch_norm(), name=f"{name}_dw_bn")(x)
    x = layers.ReLU(6.0, name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(synchronized=_synchronized_batch_norm(), name=f"{name}_pw_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_pw_relu")(x)


def depth_unet(input_shape=(192, 480, 3), width_multiplier=1.0, max_depth=100.0, name="depth_unet"):
    """Monocular depth network: a 5-block MobileNet encoder and a 5-layer U-Net-like decoder.

    The GradTail depth model (§4.3, App. B.3; the paper's NAS-searched filter
    layout is not published, so MobileNet-v1-style blocks are used):

    - stem: 3x3 conv, 16·α filters, stride 1;
    - encoder blocks 1-5 (`encoder_block_k`): a stride-2 depthwise-separable unit
      and a stride-1 one, (16, 24, 40, 80, 160)·α filters, at 1/2 ... 1/32 of the
      input size;
    - decoder layers 1-5 (`decoder_up_k`): a stride-2 3x3 `Conv2DTranspose` with a
      bias and ReLU, (80, 40, 24, 16, 16)·α filters, each (but the last)
      concatenated with the encoder output of the same size (`decoder_skip_k`)
      and mixed by a 3x3 conv (`decoder_conv_k`);
    - head `depth`: a 3x3 conv to one channel and `max_depth · sigmoid`, so the
      output is a positive depth map in metres of the input's height and width.

    Batch normalization is synchronized (`synchronized=True`) on the TensorFlow
    backend: under `tf.distribute` its batch statistics are all-reduced over the
    replicas, so training matches one device with the same global batch. Keras
    supports that flag on TensorFlow only; on other backends the layers are built
    without it (one device checked on JAX; several devices there not checked).
    The decoder has no batch normalization, so the biases of `decoder_up_1` and
    `decoder_up_2` (the parameters GradTail uses on this model) receive a
    per-example gradient (batch normalization right after a layer would cancel
    its bias gradient). Select them with
    `[model.get_layer(f"decoder_up_{k}").bias for k in (1, 2)]`.

    Args:
        input_shape: `(height, width, channels)`; height and width must be
            multiples of 32. Defaults to `(192, 480, 3)`.
        width_multiplier: α, scales every filter count (at least 4 filters per
            layer), > 0. Defaults to 1.0 (≈ 0.38 M parameters).
        max_depth: largest depth the head can output, in metres, > 0. Defaults to 100.
        name: model name. Defaults to `"depth_unet"`.

    Returns:
        A functional `keras.Model` mapping images `(batch, H, W, C)` to depth maps
        `(batch, H, W, 1)`.

    Example:

    >>> model = depth_unet(input_shape=(64, 160, 3), width_multiplier=0.5)
    >>> model.output_shape
    (None, 64, 160, 1)
    >>> [tuple(model.get_layer(f"decoder_up_{k}").bias.shape) for k in (1, 2)]
    [(40,), (20,)]

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using Gradient-based
          Sample Weighting", arXiv:2201.05938.
        - Howard et al., "MobileNets", arXiv:1704.04861; Ronneberger et al.,
          "U-Net", arXiv:1505.04597.
    """
    try:
        height, width, channels = input_shape
    except (TypeError, ValueError):
        raise ValueError(
            f"Expected `input_shape` to be (height, width, channels). Received: input_shape={input_shape!r}"
        ) from None
    height = _validation.check_int("input_shape", height, minimum=32)
    width = _validation.check_int("input_shape", width, minimum=32)
    channels = _validation.check_int("input_shape", channels, minimum=1)
    if height % 32 or width % 32:
        raise ValueError("Expected `input_shape` height and width to be multiples of 32 (five stride-2 "
                         f"blocks). Received: input_shape={tuple(input_shape)}")
    width_multiplier = _validation.check_float("width_multiplier", width_multiplier, minimum=0.0,
                                               min_inclusive=False)
    max_depth = _validation.check_float("max_depth", max_depth, minimum=0.0, min_inclusive=False)

    def filters(count):
        return max(4, int(round(count * width_multiplier)))

    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = layers.Conv2D(filters(16), 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(synchronized=_synchronized_batch_norm(), name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    skips = []
    for k, count in enumerate(ENCODER_FILTERS, start=1):
        x = _separable_block(x, filters(count), 2, f"encoder_block_{k}a")
        x = _separable_block(x, filters(count), 1, f"encoder_block_{k}")
        skips.append(x)
    for k, count in enumerate(DECODER_FILTERS, start=1):
        x = layers.Conv2DTranspose(filters(count), 3, strides=2, padding="same", activation="relu",
                                   name=f"decoder_up_{k}")(x)
        if k < len(DECODER_FILTERS):
            x = layers.Concatenate(name=f"decoder_skip_{k}")([x, skips[-1 - k]])
            x = layers.Conv2D(filters(count), 3, padding="same", activation="relu", name=f"decoder_conv_{k}")(x)
    x = layers.Conv2D(1, 3, padding="same", name="depth_logits")(x)
    outputs = _DepthHead(max_depth, name="depth")(x)
    return keras.Model(inputs, outputs, name=name)


@keras.saving.register_keras_serializable(package="keras_longtail")
class _DepthHead(layers.Layer):
    """max_depth · sigmoid(x): a positive depth in metres (serializable, unlike a Lambda)."""

    def __init__(self, max_depth, **kwargs):
        super().__init__(**kwargs)
        self.max_depth = float(max_depth)

    def call(self, inputs):
        return self.max_depth * keras.ops.sigmoid(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_depth": self.max_depth}
