"""ResNeXt-50 (32x4d) of Xie et al. (2017), built from public Keras layers."""

import keras
from keras import layers

from keras_longtail._internal import validation as _validation

_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (planes, blocks, stride of the first block)
_CARDINALITY = 32
_BASE_WIDTH = 4
_EXPANSION = 4
_EPSILON = 1e-5  # torchvision's batch-norm epsilon


def _initializer():
    # torchvision's kaiming_normal_(mode="fan_out", nonlinearity="relu").
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")


def _bottleneck(x, planes, stride, momentum, name):
    width = planes * _BASE_WIDTH // 64 * _CARDINALITY
    out = planes * _EXPANSION
    shortcut = x
    x = layers.Conv2D(width, 1, use_bias=False, kernel_initializer=_initializer(), name=f"{name}_conv1")(x)
    x = layers.BatchNormalization(momentum=momentum, epsilon=_EPSILON, name=f"{name}_bn1")(x)
    x = layers.ReLU(name=f"{name}_relu1")(x)
    x = layers.ZeroPadding2D(1, name=f"{name}_pad2")(x)
    x = layers.Conv2D(width, 3, strides=stride, groups=_CARDINALITY, use_bias=False,
                      kernel_initializer=_initializer(), name=f"{name}_conv2")(x)
    x = layers.BatchNormalization(momentum=momentum, epsilon=_EPSILON, name=f"{name}_bn2")(x)
    x = layers.ReLU(name=f"{name}_relu2")(x)
    x = layers.Conv2D(out, 1, use_bias=False, kernel_initializer=_initializer(), name=f"{name}_conv3")(x)
    x = layers.BatchNormalization(momentum=momentum, epsilon=_EPSILON, name=f"{name}_bn3")(x)
    if stride != 1 or shortcut.shape[-1] != out:
        shortcut = layers.Conv2D(out, 1, strides=stride, use_bias=False, kernel_initializer=_initializer(),
                                 name=f"{name}_shortcut_conv")(shortcut)
        shortcut = layers.BatchNormalization(momentum=momentum, epsilon=_EPSILON,
                                             name=f"{name}_shortcut_bn")(shortcut)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def resnext50(num_classes, input_shape=(224, 224, 3), name="resnext50", batch_norm_momentum=0.99):
    """ResNeXt-50 (32x4d): ResNet-50 with 32-group 3x3 convolutions, with a `"classifier"` head.

    The backbone of most ImageNet-LT and Places-LT results (decoupling, LWS,
    weight balancing). torchvision's `resnext50_32x4d`, layer for layer: a 7x7/2
    stem convolution, batch norm, ReLU and 3x3/2 max pooling, then four stages of
    3 / 4 / 6 / 3 bottleneck blocks; a block of stage s with `planes` = 64 * 2^s
    is 1x1 conv to `width` = 2 * planes channels, 3x3 conv with 32 groups of 4 x
    (2^s) channels (`Conv2D(groups=32)`, stride 2 in the first block of stages
    2-4), 1x1 conv to 4 * planes, each followed by batch norm (epsilon 1e-5), with
    a projection shortcut (strided 1x1 conv + batch norm) where the shape changes.
    Convolutions have no bias and torchvision's initialization (He normal,
    fan-out); padding is explicit and symmetric, as in PyTorch.

    Global average pooling comes out of a layer named `"features"` (2,048
    channels) and the logits of a Dense layer named `"classifier"` (no
    activation), as in `resnet32`.

    The backbone has 22,979,904 trainable weights, the figure torchvision reports
    (25,028,904 with its 1,000-class fc), plus 2,049 x num_classes for the head,
    and 68,224 batch-norm statistics (moving mean and variance of 34,112 channels).

    Keras' TensorFlow backend runs grouped convolutions through an XLA-compiled
    function on every device (TensorFlow's own kernel has no grouped CPU version),
    so eager calls log a retracing warning per layer; `fit`, GPUs and TPUs are
    unaffected.

    Args:
        num_classes: number of classes, >= 2.
        input_shape: image shape. Defaults to `(224, 224, 3)`; any size >= 32 works.
        name: model name. Defaults to `"resnext50"`.
        batch_norm_momentum: momentum of every BatchNormalization's moving
            statistics. Defaults to `0.99` (Keras' default; PyTorch's default is
            Keras' `0.9`).

    Returns:
        A functional `keras.Model` mapping images to logits.

    Example:

    >>> model = resnext50(num_classes=10, input_shape=(64, 64, 3))
    >>> model.get_layer("stage1_block1_conv2").groups, model.get_layer("features").output.shape
    (32, (None, 2048))
    >>> model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    References:
        - Xie et al., "Aggregated Residual Transformations for Deep Neural
          Networks", CVPR 2017, arXiv:1611.05431.
    """
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    batch_norm_momentum = _validation.check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0,
                                                  maximum=1.0, max_inclusive=False)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < 32:
        raise ValueError(f"Expected `input_shape` (height, width, channels) with height, width >= 32. "
                         f"Received: input_shape={input_shape}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.ZeroPadding2D(3, name="stem_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, kernel_initializer=_initializer(), name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=batch_norm_momentum, epsilon=_EPSILON, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    for stage, (planes, blocks, stride) in enumerate(_STAGES):
        for block in range(blocks):
            x = _bottleneck(x, planes, stride if block == 0 else 1, batch_norm_momentum,
                            name=f"stage{stage + 1}_block{block + 1}")
    features = layers.GlobalAveragePooling2D(name="features")(x)
    logits = layers.Dense(num_classes, name="classifier")(features)
    return keras.Model(inputs, logits, name=name)
