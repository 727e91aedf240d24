"""GradTail's `"bias"` gradient path: exact per-(pseudo-)example gradients of per-channel biases.

A bias b (one value per output channel c) added by a layer whose output is
y = act(z), z = conv(x) + b (Dense, Conv, DepthwiseConv, Conv-transpose) has the
per-example gradient ∂L_i/∂b_c = Σ_s δ_i[s, c]·act'(z_i[s, c]), where δ_i is the
gradient of L_i with respect to y_i and s runs over the spatial positions. So
the per-example gradient is a small vector obtained from δ at the layer output,
which the tail of the network (after the layer) gives for every example of the
batch at once when the tail treats examples independently (no batch
normalization after the layer).

With K patches per image (L_bk, see `PatchStrategy`), the K vectors
S_k = Σ_b L_bk are differentiated (`GradientTape.jacobian`, one vectorized
backward pass per patch): ∂S_k/∂y_b = ∂L_bk/∂y_b because L_b'k does not depend
on y_b for b' ≠ b. The generic jacobian of the K·B pseudo-example losses runs
K·B backward passes over the whole batch (each zero outside its own example)
and materializes a (K·B, B, ...) cotangent per tensor of the tail: B times the
work this path does, for the same numbers.
"""

import keras

from keras_longtail._internal import backend as _backend

_BIAS_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
                keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_ACTIVATIONS = ("linear", "relu")


def _activation_name(layer):
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear:
        return "linear"
    if activation is keras.activations.relu:
        return "relu"
    return getattr(activation, "__name__", repr(activation))


def path_problem(model, layers, variables, owners):
    """Why the bias path does not apply (empty string when it does)."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        return "the model is not functional (its layer outputs cannot be captured)"
    if len(outputs) != 1:
        return "the model has several outputs"
    first = len(layers)
    for variable, layer in zip(variables, owners):
        if layer is None or variable is not getattr(layer, "bias", None):
            return f"{variable.path!r} is not the bias of its layer"
        if type(layer) not in _BIAS_LAYERS:
            return f"{variable.path!r} belongs to a {type(layer).__name__}, not a Dense or convolution layer"
        if _activation_name(layer) not in _ACTIVATIONS:
            return f"layer {layer.name!r} has activation {_activation_name(layer)!r}, not linear or relu"
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            return f"layer {layer.name!r} is not channels_last"
        try:
            layer.output  # noqa: B018 - a shared layer has no unique output
        except (AttributeError, ValueError):
            return f"layer {layer.name!r} has no unique functional output (shared layer?)"
        first = min(first, next(i for i, candidate in enumerate(layers) if candidate is layer))
    for layer in layers[first:]:
        if isinstance(layer, keras.layers.BatchNormalization):
            return f"batch normalization ({layer.name!r}) after the selected layers couples the examples"
    return ""


def per_example_gradients(inner, values, captures, owners, indices, num_masks):
    """Per-(pseudo-)example gradients of the selected biases: a list of (N, channels) tensors.

    `values` are the N = B·K pseudo-example losses in example-major order (the last
    op `inner` recorded), `captures` the outputs of the plan's capture model
    (`_plan.capture_model`); `indices` says which of them are the owners' outputs.
    """
    tf = _backend.import_tensorflow()
    layer_outputs = [captures[index] for index in indices]
    if num_masks == 1:
        # One pseudo-example per example: one backward pass of Σ_i L_i.
        deltas = inner.gradient(values, layer_outputs, output_gradients=tf.ones_like(values),
                                unconnected_gradients=tf.UnconnectedGradients.ZERO)
        deltas = [delta[None] for delta in deltas]
    else:
        with inner:  # record S_k = Σ_b L_bk on the (exited) tape of the forward pass
            per_patch = tf.reduce_sum(tf.reshape(values, [-1, num_masks]), axis=0)
        deltas = inner.jacobian(per_patch, layer_outputs, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    gradients = []
    for layer, output, delta in zip(owners, layer_outputs, deltas):
        delta = tf.cast(delta, tf.float32)  # (K, B, ..., C)
        if _activation_name(layer) == "relu":
            delta = delta * tf.cast(output > 0, tf.float32)[None]
        rank = len(delta.shape)
        if rank > 3:
            delta = tf.reduce_sum(delta, axis=list(range(2, rank - 1)))  # over the spatial positions
        channels = tf.shape(delta)[-1]
        gradients.append(tf.reshape(tf.transpose(delta, [1, 0, 2]), [-1, channels]))  # (B·K, C)
    return gradients
