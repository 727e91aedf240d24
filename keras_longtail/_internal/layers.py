"""Layer traversal shared by the train-step mixins and the dual-phase pipeline."""

import keras


def flat_layers(model):
    """Every layer of `model` in `model.layers` order, nested models (and layers with `layers`) expanded."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model) or (hasattr(layer, "layers") and layer is not model):
            found.extend(flat_layers(layer))
        else:
            found.append(layer)
    return found
