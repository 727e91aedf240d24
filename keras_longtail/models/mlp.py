"""A small multilayer perceptron."""

import keras
from keras import layers

from keras_longtail._internal import validation as _validation


def mlp(num_classes, input_shape, hidden_units=(5,), activation="relu", name="mlp"):
    """A multilayer perceptron with a named `"classifier"` output layer.

    Flattens its input, applies one Dense layer per entry of `hidden_units` and
    ends in a Dense `"classifier"` producing logits; the last hidden activation is
    the layer `"features"`. The default (one hidden layer of 5 units) is the
    GradTail toy model (paper App. B.1).

    Args:
        num_classes: number of classes, >= 2.
        input_shape: shape of one example, e.g. `(2,)` or `(8, 8, 1)`.
        hidden_units: sizes of the hidden layers (at least one). Defaults to `(5,)`.
        activation: hidden activation. Defaults to `"relu"`.
        name: model name. Defaults to `"mlp"`.

    Returns:
        A functional `keras.Model` mapping inputs to logits.

    Example:

    >>> model = mlp(num_classes=2, input_shape=(2,))
    >>> [layer.name for layer in model.layers]
    ['input', 'flatten', 'hidden1', 'features', 'classifier']
    """
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    hidden_units = list(hidden_units)
    if not hidden_units:
        raise ValueError(f"Expected at least one hidden layer. Received: hidden_units={hidden_units}")
    for units in hidden_units:
        _validation.check_int("hidden_units", units, minimum=1)
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, name=f"hidden{i + 1}")(x)
        x = layers.Activation(activation, name="features" if i == len(hidden_units) - 1 else f"act{i + 1}")(x)
    logits = layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(inputs, logits, name=name)
