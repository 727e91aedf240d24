"""GradTail's per-example gradient kernels: ⟨∇_i, w̃⟩, ‖∇_i‖² and Σ_i s_i ∇_i for each gradient path.

Given the plan (`_plan.resolve_plan`: the selected variables and the path), the
tape of the forward pass and the N (pseudo-)example losses L_i, each path gives
for every i the dot product with the running mean gradient w̃, the squared norm
of the per-example gradient ∇_i = ∂L_i/∂w, and the s-weighted sums Σ_i s_i ∇_i
(one per selected variable), without forming ∇_i where it can be avoided:

- `"dense"` / `"analytic"` (`analytic_statistics`): Dense layers in closed form
  (∇_i = a_i δ_iᵀ), Conv2D layers from im2col patches, with the exact
  batch-norm coupling terms (`conv_per_example_gradients`);
- `"bias"`: `_bias_gradients.per_example_gradients`;
- `"jacobian"`: `tf.GradientTape.jacobian` of the loss vector.

The formulas are in `GradTailMixin`'s docstring. TensorFlow backend.
"""

import keras
from keras import ops

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import distribute as _distribute
from keras_longtail.gradtail import _bias_gradients


def statistics(plan, inner, values, pseudo_weights, captures, mean_gradient, num_masks):
    """Per-example ⟨∇_i, w̃⟩, ‖∇_i‖² and the s-weighted sums Σ_i s_i ∇_i (one per selected variable).

    Args:
        plan: the resolved plan (`_plan.resolve_plan`).
        inner: the (exited) `tf.GradientTape` of the forward pass; `values` is the last op it recorded.
        values: the N (pseudo-)example losses L_i, float32 (N,).
        pseudo_weights: their weights s_i, float32 (N,).
        captures: the forward pass's auxiliary outputs (`.outputs`) and `.training`.
        mean_gradient: w̃, one float32 tensor per selected variable.
        num_masks: pseudo-examples per example (1 without patches).

    Returns:
        (dots (N,), squared norms (N,), sums: one tensor per selected variable, of its shape).
    """
    tf = _backend.import_tensorflow()
    if plan.path in ("dense", "analytic"):
        return analytic_statistics(plan, inner, values, pseudo_weights, captures, mean_gradient)
    dots, squared, sums = tf.zeros_like(values), tf.zeros_like(values), [None] * len(plan.variables)
    if plan.path == "bias":  # see _bias_gradients
        per_example = _bias_gradients.per_example_gradients(
            inner, values, captures.outputs, plan.bias_owners, plan.bias_indices, num_masks)
        for index, gradient in enumerate(per_example):
            dots += tf.linalg.matvec(gradient, mean_gradient[index])
            squared += tf.reduce_sum(tf.square(gradient), axis=-1)
            sums[index] = tf.linalg.matvec(gradient, pseudo_weights, transpose_a=True)
        return dots, squared, sums
    jacobians = inner.jacobian(values, plan.variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    for index, jacobian in enumerate(jacobians):
        flat = tf.reshape(tf.cast(jacobian, tf.float32), [tf.shape(values)[0], -1])
        dots += tf.linalg.matvec(flat, tf.reshape(mean_gradient[index], [-1]))
        squared += tf.reduce_sum(tf.square(flat), axis=-1)
        sums[index] = tf.reshape(tf.linalg.matvec(flat, pseudo_weights, transpose_a=True),
                                 plan.variables[index].shape)
    return dots, squared, sums


def analytic_statistics(plan, inner, values, pseudo_weights, captures, mean_gradient):
    """⟨∇_i, w̃⟩, ‖∇_i‖² and Σ_i s_i ∇_i from each selected layer's per-example gradient (see `GradTailMixin`)."""
    tf = _backend.import_tensorflow()
    outputs = captures.outputs
    coupled = [e.bn is not None and captures.training and e.bn.trainable for e in plan.layers]
    sources = [outputs[e.bn_output_index if c else e.output_index] for e, c in zip(plan.layers, coupled)]
    # One backward pass of Σ_i L_i (`values` is the last op the tape recorded): row i of each gradient is
    # ∂L_i/∂(source_i), the tail treating examples independently.
    gradients = inner.gradient(values, sources, output_gradients=tf.ones_like(values),
                               unconnected_gradients=tf.UnconnectedGradients.ZERO)
    dots, squared, sums = tf.zeros_like(values), tf.zeros_like(values), [None] * len(plan.variables)
    for entry, is_coupled, gradient in zip(plan.layers, coupled, gradients):
        a = tf.cast(outputs[entry.input_index], tf.float32)
        gradient = tf.cast(gradient, tf.float32)
        kernel, bias = entry.kernel_index, entry.bias_index
        if type(entry.layer) is keras.layers.Dense:
            # ∇_i = a_i δ_iᵀ (kernel) and δ_i (bias), never materialized.
            delta = through_activation(entry.layer, a, gradient)
            delta_squared = tf.reduce_sum(tf.square(delta), axis=-1)
            if kernel is not None:
                dots += tf.reduce_sum(tf.matmul(a, mean_gradient[kernel]) * delta, axis=-1)
                squared += tf.reduce_sum(tf.square(a), axis=-1) * delta_squared
                sums[kernel] = tf.matmul(a, pseudo_weights[:, None] * delta, transpose_a=True)
            if bias is not None:
                dots += tf.linalg.matvec(delta, mean_gradient[bias])
                squared += delta_squared
                sums[bias] = tf.linalg.matvec(delta, pseudo_weights, transpose_a=True)
            continue
        output = tf.cast(outputs[entry.output_index], tf.float32)
        per_example = conv_per_example_gradients(entry, a, output, gradient, is_coupled)  # (N, K, C)
        rows = [tf.reshape(mean_gradient[kernel], [-1, entry.layer.filters])] if kernel is not None else []
        rows += [mean_gradient[bias][None, :]] if bias is not None else []
        dots += tf.einsum("nkc,kc->n", per_example, tf.concat(rows, axis=0) if len(rows) > 1 else rows[0])
        squared += tf.reduce_sum(tf.square(per_example), axis=[1, 2])
        total = tf.einsum("n,nkc->kc", pseudo_weights, per_example)
        if kernel is not None:
            sums[kernel] = tf.reshape(total[:-1] if bias is not None else total, plan.variables[kernel].shape)
        if bias is not None:
            sums[bias] = total[-1]
    return dots, squared, sums


def conv_per_example_gradients(entry, inputs, output, gradient, coupled):
    """Per-example gradients (N, K, C) of a Conv2D layer's selected kernel rows (and a last bias row).

    From im2col patches P_i (N, positions, K) and `gradient`, the gradient of Σ L at the conv output, or,
    when `coupled`, at the output of the training-mode batch norm consuming the conv output; the
    batch-norm coupling terms are then added exactly (formula in `GradTailMixin`).
    """
    tf = _backend.import_tensorflow()
    layer = entry.layer
    batch, channels = tf.shape(inputs)[0], layer.filters
    columns = []
    if entry.kernel_index is not None:
        height, width = layer.kernel_size
        patches = tf.image.extract_patches(
            inputs, sizes=[1, height, width, 1], strides=[1, *layer.strides, 1],
            rates=[1, *layer.dilation_rate, 1], padding=layer.padding.upper())
        columns.append(tf.reshape(patches, [batch, -1, height * width * inputs.shape[-1]]))
    if entry.bias_index is not None:
        columns.append(tf.ones_like(tf.reshape(output[..., :1], [batch, -1, 1])))
    patches = tf.concat(columns, axis=-1) if len(columns) > 1 else columns[0]      # P: (N, positions, K)
    gradient = tf.reshape(gradient, [batch, -1, channels])                          # G: (N, positions, C)
    per_example = tf.einsum("npk,npc->nkc", patches, gradient)
    if not coupled:
        return per_example
    bn = entry.bn
    mean, variance = ops.moments(output, axes=[0, 1, 2], synchronized=bn.synchronized)
    inverse = tf.math.rsqrt(tf.cast(variance, tf.float32) + bn.epsilon)
    normalized = tf.reshape((output - mean) * inverse, [batch, -1, channels])       # x̂
    count = tf.cast(tf.shape(patches)[0] * tf.shape(patches)[1], tf.float32)       # M
    patch_sum = tf.reduce_sum(patches, axis=[0, 1])                                  # S: (K,)
    patch_normalized = tf.einsum("npk,npc->kc", patches, normalized)                 # A: (K, C)
    if bn.synchronized:  # the batch norm's statistics span the replicas: so do M, S and A
        size = tf.size(patch_sum)
        packed = _distribute.cross_replica_sum(tf.concat(
            [count[None], patch_sum, tf.reshape(patch_normalized, [-1])], axis=0))
        count, patch_sum = packed[0], packed[1:1 + size]
        patch_normalized = tf.reshape(packed[1 + size:], tf.shape(patch_normalized))
    first = tf.reduce_sum(gradient, axis=1) / count                                   # c1: (N, C)
    second = tf.reduce_sum(gradient * normalized, axis=1) / count                     # c2: (N, C)
    per_example = (per_example - patch_sum[None, :, None] * first[:, None, :]
                   - patch_normalized[None] * second[:, None, :])
    scale = inverse if not bn.scale else inverse * tf.cast(tf.convert_to_tensor(bn.gamma), tf.float32)
    return per_example * scale[None, None, :]


def through_activation(layer, a, delta):
    """δ with respect to a Dense layer's pre-activation output, from δ with respect to its output."""
    tf = _backend.import_tensorflow()
    activation = layer.activation
    if activation is None or activation is keras.activations.linear:
        return delta
    z = tf.matmul(a, tf.cast(tf.convert_to_tensor(layer.kernel), tf.float32))
    if layer.bias is not None:
        z = z + tf.cast(tf.convert_to_tensor(layer.bias), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = activation(z)
    return tape.gradient(out, z, output_gradients=delta)

