"""ResNet-50 (He et al., 2016) with a named classifier, for ImageNet-LT, Places-LT and iNaturalist."""

import keras
from keras import layers

from keras_longtail._internal import validation as _validation


def resnet50(num_classes, input_shape=(224, 224, 3), name="resnet50", batch_norm_momentum=0.99):
    """ResNet-50 from `keras.applications`, randomly initialised, with a `"classifier"` head.

    `keras.applications.ResNet50(weights=None, include_top=False)`: a 7x7 stem
    and four stages of 3 / 4 / 6 / 3 bottleneck blocks (1x1, 3x3, 1x1
    convolutions; 256 / 512 / 1024 / 2048 output channels), then global average
    pooling in a layer named `"features"` and a Dense layer named `"classifier"`
    (logits, no activation), as in `resnet32`:
    `model.get_layer("classifier")`,
    `keras.Model(model.input, model.get_layer("features").output)`.

    The backbone has 23,534,592 trainable weights (+ 2,049 x num_classes for the
    head) and 53,120 batch-norm statistics. That is 26,560 more trainable weights
    than torchvision's `resnet50` (23,508,032 without its fc), because the Keras
    application gives every convolution a bias, which the following batch norm
    makes redundant; the function and the number of layers are the same.

    Images of any size >= 32 work; the data loaders produce float32 in [0, 1],
    which suits a randomly initialised network (no caffe-style preprocessing).

    Args:
        num_classes: number of classes, >= 2.
        input_shape: image shape. Defaults to `(224, 224, 3)`.
        name: model name. Defaults to `"resnet50"`.
        batch_norm_momentum: momentum of every BatchNormalization's moving
            statistics. Defaults to `0.99` (Keras' default; PyTorch's default is
            Keras' `0.9`).

    Returns:
        A functional `keras.Model` mapping images to logits.

    Example:

    >>> model = resnet50(num_classes=10, input_shape=(64, 64, 3))
    >>> model.get_layer("classifier").units, model.get_layer("features").output.shape
    (10, (None, 2048))
    >>> model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    References:
        - He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
          arXiv:1512.03385.
    """
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    batch_norm_momentum = _validation.check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0,
                                                  maximum=1.0, max_inclusive=False)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < 32:
        raise ValueError(f"Expected `input_shape` (height, width, channels) with height, width >= 32. "
                         f"Received: input_shape={input_shape}")
    inputs = keras.Input(shape=input_shape, name="image")
    backbone = keras.applications.ResNet50(weights=None, include_top=False, input_tensor=inputs)
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = batch_norm_momentum
    features = layers.GlobalAveragePooling2D(name="features")(backbone.output)
    logits = layers.Dense(num_classes, name="classifier")(features)
    return keras.Model(inputs, logits, name=name)
