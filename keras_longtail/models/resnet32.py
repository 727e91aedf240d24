"""The CIFAR ResNet-32 of He et al. (2016), as in the LDAM-DRW code the papers build on."""

import keras
from keras import layers
from keras import ops

from keras_longtail._internal import validation as _validation

SHORTCUTS = ("zero_pad", "projection")


@keras.saving.register_keras_serializable(package="keras_longtail")
class ZeroPadShortcut(layers.Layer):
    """He et al.'s option-A shortcut: subsample by `stride`, zero-pad the channels to `filters`.

    `y = pad(x[:, ::s, ::s, :], channels: (p, filters - c - p))` with `p = (filters - c) // 2`, the
    parameter-free shortcut of the CIFAR ResNets (`F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4,
    planes // 4))` in the LDAM-DRW code when the width doubles).

    Args:
        filters: output channels, >= the input's.
        stride: spatial subsampling factor. Defaults to `2`.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, filters, stride=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = _validation.check_int("filters", filters, minimum=1)
        self.stride = _validation.check_int("stride", stride, minimum=1)

    def build(self, input_shape):
        if input_shape[-1] is None or input_shape[-1] > self.filters:
            raise ValueError(f"Expected an input with at most `filters`={self.filters} channels. "
                             f"Received: input_shape={tuple(input_shape)}")

    def call(self, inputs):
        x = inputs[:, ::self.stride, ::self.stride, :]
        extra = self.filters - inputs.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def compute_output_shape(self, input_shape):
        def sub(n):
            return None if n is None else -(-n // self.stride)
        return (input_shape[0], sub(input_shape[1]), sub(input_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "stride": self.stride}


def _conv(filters, kernel_size, stride, kernel_regularizer, name):
    return layers.Conv2D(filters, kernel_size, strides=stride, padding="same", use_bias=False,
                         kernel_initializer="he_normal", kernel_regularizer=kernel_regularizer, name=name)


def _basic_block(x, filters, stride, kernel_regularizer, name, momentum, shortcut_kind):
    shortcut = x
    x = _conv(filters, 3, stride, kernel_regularizer, f"{name}_conv1")(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = _conv(filters, 3, 1, kernel_regularizer, f"{name}_conv2")(x)
    x = layers.BatchNormalization(momentum=momentum, name=f"{name}_bn2")(x)
    if stride != 1 or shortcut.shape[-1] != filters:
        if shortcut_kind == "zero_pad":
            shortcut = ZeroPadShortcut(filters, stride, name=f"{name}_shortcut_pad")(shortcut)
        else:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_initializer="he_normal",
                                     kernel_regularizer=kernel_regularizer, name=f"{name}_shortcut_conv")(shortcut)
            shortcut = layers.BatchNormalization(momentum=momentum, name=f"{name}_shortcut_bn")(shortcut)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def resnet32(num_classes, input_shape=(32, 32, 3), kernel_regularizer=None, name="resnet32",
             batch_norm_momentum=0.9, shortcut="zero_pad", augmentation=()):
    """The CIFAR ResNet-32: 3 stages x 5 basic blocks with 16 / 32 / 64 filters.

    conv3x3(16)-BN-ReLU, then stages of 5 basic blocks (two 3x3 conv-BN, identity
    shortcut), stride 2 at the start of stages 2 and 3, global average pooling,
    and a Dense classifier: the model of every CIFAR-LT result in this toolkit's
    papers (the LDAM-DRW `resnet32`). With the default `shortcut="zero_pad"`
    (He et al.'s option A, as the LDAM-DRW code) it has exactly the reference's
    464,154 trainable parameters for 10 classes.

    The pooled features come out of a layer named `"features"` and the logits of
    a Dense layer named `"classifier"` (no activation), so heads, kernel
    constraints and feature extractors can be swapped by name:
    `model.get_layer("classifier")`,
    `keras.Model(model.input, model.get_layer("features").output)`.

    Args:
        num_classes: number of classes, >= 2.
        input_shape: image shape. Defaults to `(32, 32, 3)`; any size >= 8 works
            (e.g. `(28, 28, 1)` for Fashion-MNIST).
        kernel_regularizer: optional regularizer for every kernel (coupled weight
            decay); prefer the optimizer's `weight_decay`. Defaults to `None`.
        name: model name. Defaults to `"resnet32"`.
        batch_norm_momentum: momentum of every BatchNormalization's moving statistics.
            Defaults to `0.9`: PyTorch's default (its momentum 0.1), which the
            reference CIFAR code uses. Keras' own default, 0.99, makes the moving
            statistics follow the weights 10x more slowly, which costs accuracy on
            short budgets.
        shortcut: `"zero_pad"` (option A: subsample and zero-pad the channels, no
            parameters; `ZeroPadShortcut`) or `"projection"` (option B: a strided
            1x1 convolution with batch norm, ~2.6 k more parameters, built only from
            standard Keras layers). Defaults to `"zero_pad"`.
        augmentation: layers applied to the image first, in order, e.g. the CIFAR
            recipe `[PaddedRandomCrop(4), keras.layers.RandomFlip("horizontal")]`, so
            that augmentation runs inside the compiled training step; random layers
            like these are the identity outside training. Defaults to `()`: none (the
            input pipeline augments).

    Returns:
        A functional `keras.Model` mapping images to logits.

    Example:

    >>> model = resnet32(num_classes=10)
    >>> sum(int(w.numpy().size) for w in model.trainable_weights)
    464154
    >>> model.get_layer("classifier").units
    10

    References:
        - He et al., "Deep Residual Learning for Image Recognition", CVPR 2016
          (arXiv:1512.03385), Section 4.2.
        - Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
          Margin Loss", NeurIPS 2019 (arXiv:1906.07413): the CIFAR-LT code.
    """
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    batch_norm_momentum = _validation.check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0,
                                                  maximum=1.0, max_inclusive=False)
    if shortcut not in SHORTCUTS:
        raise ValueError(f"Expected `shortcut` in {list(SHORTCUTS)}. Received: shortcut={shortcut!r}")
    augmentation = list(augmentation)
    for layer in augmentation:
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"Expected `augmentation` to hold Keras layers. Received: augmentation={augmentation!r}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for layer in augmentation:
        x = layer(x)
    x = _conv(16, 3, 1, kernel_regularizer, "stem_conv")(x)
    x = layers.BatchNormalization(momentum=batch_norm_momentum, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(5):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, stride, kernel_regularizer, name=f"stage{stage + 1}_block{block + 1}",
                             momentum=batch_norm_momentum, shortcut_kind=shortcut)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = layers.Dense(num_classes, kernel_initializer="he_normal", kernel_regularizer=kernel_regularizer,
                          name="classifier")(features)
    return keras.Model(inputs, logits, name=name)
