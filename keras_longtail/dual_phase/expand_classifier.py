"""Growing a trained classifier to more classes (asynchronous dual-phase training, phase II)."""

import keras
import numpy as np

from keras_longtail._internal import validation as _validation


def expand_classifier(model, num_classes, layer_name="classifier", class_ids=None):
    """A copy of `model` whose last layer predicts `num_classes` classes, keeping the learned weights.

    The classifier layer (a `Dense` or `CosineClassifier` whose output is the
    model's output) is rebuilt with `num_classes` units from its own config, on
    the same input tensor: every other layer is shared with `model` (same
    weights, same variables). Column r of the old kernel (and bias entry r)
    moves to column `class_ids[r]`; the other columns keep the new layer's
    initialization (its `kernel_initializer`, zero bias). With the default
    `class_ids` the old classes stay in front. Passing the phase-I class ids of
    `split_by_frequency(...).phase_one` maps a truncated phase-I classifier back
    to the data set's label order.

    Args:
        model: a functional `keras.Model` ending in the classifier layer.
        num_classes: number of output classes, at least the current number.
        layer_name: name of the classifier layer. Defaults to `"classifier"`.
        class_ids: new column of each old class (distinct ints in
            `[0, num_classes)`). Defaults to `None` (`range(old_units)`).

    Returns:
        A new functional `keras.Model` sharing every layer but the classifier.

    Example:

    >>> import keras
    >>> inputs = keras.Input((4,))
    >>> head = keras.Model(inputs, keras.layers.Dense(2, name="classifier")(inputs))
    >>> full = expand_classifier(head, 5, class_ids=[3, 0])
    >>> full.output_shape
    (None, 5)
    >>> bool((full.get_layer("classifier").kernel.numpy()[:, 3] ==
    ...       head.get_layer("classifier").kernel.numpy()[:, 0]).all())
    True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected `model` to be a keras.Model. Received: model={model!r}")
    try:
        layer = model.get_layer(layer_name)
    except ValueError as error:
        raise ValueError(f"Expected `model` to have a layer named `layer_name`. Received: "
                         f"layer_name={layer_name!r}") from error
    if not hasattr(layer, "units"):
        raise TypeError(f"Expected the classifier `{layer_name}` to be a Dense or CosineClassifier layer "
                        f"(with `units`). Received: {type(layer).__name__}")
    if len(model.outputs) != 1 or model.outputs[0] is not layer.output:
        raise ValueError(f"Expected the layer `{layer_name}` to produce the model's only output. "
                         f"Received: outputs {[t.name for t in model.outputs]}")
    old_units = int(layer.units)
    num_classes = _validation.check_int("num_classes", num_classes, minimum=old_units)
    if class_ids is None:
        class_ids = list(range(old_units))
    class_ids = [_validation.check_int("class_ids", k, minimum=0, maximum=num_classes - 1) for k in class_ids]
    if len(class_ids) != old_units or len(set(class_ids)) != old_units:
        raise ValueError(f"Expected `class_ids` to hold {old_units} distinct class ids (one per current "
                         f"column). Received: class_ids={class_ids}")

    config = layer.get_config()
    config["units"] = num_classes
    new_layer = type(layer).from_config(config)
    outputs = new_layer(layer.input)
    weights = []
    for old, new in zip(layer.get_weights(), new_layer.get_weights()):
        new = np.array(new)
        new[..., class_ids] = old  # the class axis is the last one of a kernel and of a bias
        weights.append(new)
    new_layer.set_weights(weights)
    return keras.Model(model.input, outputs, name=model.name)
