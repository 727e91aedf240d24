"""GradTail's plan: which weights are compared, and which per-example gradient path computes it.

`resolve_plan` turns `gradient_layers` / `gradient_variables` into the selected
trainable variables (by default the kernels and biases of the last two layers
with a trainable kernel) and picks the path: `"dense"` where every selected
weight belongs to a Dense layer of a functional model with no batch
normalization after it, else `"analytic"` (Dense and Conv2D, with a batch norm
that alone consumes a selected convolution), else `"bias"`
(`_bias_gradients.path_problem`), else `"jacobian"`. Each `*_problem` function
says why its path does not apply ("" when it does); an explicitly requested
path that does not apply raises `ValueError` with that reason. For the dense
and analytic paths the plan also holds an auxiliary functional model sharing
the model's layers that returns the selected layers' inputs and outputs from
the same forward pass.
"""

import types

import keras

from keras_longtail._internal import layers as _layers
from keras_longtail.gradtail import _bias_gradients

GRADIENT_PATHS = ("auto", "analytic", "dense", "bias", "jacobian")


def as_list(value):
    """`gradient_layers` / `gradient_variables` as a list: `None` is empty, one item is a list of one."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def resolve_plan(model, layers_spec, variables_spec, gradient_path, patches):
    """Selected variables, their layers, and the per-example gradient path (see the module docstring).

    Args:
        model: the built GradTail model.
        layers_spec: `gradient_layers` as a list (layers or names; empty for none).
        variables_spec: `gradient_variables` as a list (variables or paths; empty for none).
        gradient_path: `"auto"`, `"dense"`, `"analytic"`, `"bias"` or `"jacobian"`.
        patches: the model's `PatchStrategy`, or `None`.

    Returns:
        A namespace: `variables`, `layer_names`, `extra_paths`, `path` (resolved), `layers` (the
        analytic path's per-layer entries), `aux` (the capture model, or `None`), and for the bias path
        `bias_owners` and `bias_indices`.
    """
    layers = _layers.flat_layers(model)
    trainable_ids = {id(v) for v in model.trainable_variables}
    variables, owners, layer_names, extra_paths = [], [], [], []

    def add(variable, owner, argument):
        if id(variable) not in trainable_ids:
            raise ValueError(f"Expected every GradTail variable to be trainable. Received in `{argument}`: "
                             f"{variable.path!r} (trainable={variable.trainable}, or not part of the model)")
        if all(v is not variable for v in variables):
            variables.append(variable)
            owners.append(owner)

    def find_layer(item):
        if isinstance(item, str):
            for layer in layers:
                if layer.name == item:
                    return layer
            raise ValueError(f"Expected `gradient_layers` to name layers of the model. Received: {item!r}; "
                             f"layers: {[layer.name for layer in layers]}")
        if isinstance(item, keras.layers.Layer):
            if all(layer is not item for layer in layers):
                raise ValueError(f"Expected `gradient_layers` to hold layers of the model. Received: {item.name!r}")
            return item
        raise TypeError(f"Expected `gradient_layers` to hold layers or layer names. Received: {item!r}")

    chosen_layers = [find_layer(item) for item in layers_spec]
    if not layers_spec and not variables_spec:
        with_kernel = [layer for layer in layers
                       if getattr(layer, "kernel", None) is not None and layer.trainable_weights]
        chosen_layers = with_kernel[-2:]
        if not chosen_layers:
            raise ValueError("GradTail found no layer with a trainable kernel to select by default: pass "
                             "`gradient_layers` or `gradient_variables`. Received: gradient_layers=None, "
                             "gradient_variables=None")
    for layer in chosen_layers:
        if not layers_spec:
            chosen = [v for v in (getattr(layer, "kernel", None), getattr(layer, "bias", None)) if v is not None]
        else:
            chosen = list(layer.weights)
        if not chosen or not any(id(v) in trainable_ids for v in chosen):
            raise ValueError(f"Expected every layer in `gradient_layers` to have trainable weights. "
                             f"Received: {layer.name!r} (trainable weights: {[v.path for v in layer.trainable_weights]})")
        for variable in chosen:
            if id(variable) in trainable_ids:
                add(variable, layer, "gradient_layers")
        layer_names.append(layer.name)
    by_path = {v.path: v for v in model.variables}
    for item in variables_spec:
        if isinstance(item, str):
            if item not in by_path:
                raise ValueError(f"Expected `gradient_variables` to hold variable paths of the model. "
                                 f"Received: {item!r}")
            item = by_path[item]
        if not isinstance(item, keras.Variable):
            raise TypeError(f"Expected `gradient_variables` to hold variables or their paths. Received: {item!r}")
        owner = next((layer for layer in layers if any(v is item for v in layer.weights)), None)
        add(item, owner, "gradient_variables")
        extra_paths.append(item.path)
    if not variables:
        raise ValueError("Expected a non-empty GradTail variable selection. Received: "
                         f"gradient_layers={layers_spec!r}, gradient_variables={variables_spec!r}")
    if not layers_spec:
        layer_names = []  # the default selection is re-derived from the model
    dense_reason = dense_path_problem(model, layers, variables, owners, patches)
    analytic_reason = analytic_path_problem(model, layers, variables, owners, patches)
    path = gradient_path
    for candidate, reason in (("dense", dense_reason), ("analytic", analytic_reason)):
        if path == candidate and reason:
            raise ValueError(f"gradient_path={candidate!r} cannot be used: {reason}. "
                             "Use gradient_path='jacobian' or 'auto'.")
    needs_bias = path == "bias" or (path == "auto" and dense_reason and analytic_reason)
    bias_reason = _bias_gradients.path_problem(model, layers, variables, owners) if needs_bias else ""
    if path == "bias" and bias_reason:
        raise ValueError(f"gradient_path='bias' cannot be used: {bias_reason}. Use gradient_path='jacobian' or 'auto'.")
    if path == "auto":
        path = ("dense" if not dense_reason else "analytic" if not analytic_reason
                else "bias" if not bias_reason else "jacobian")
    plan = types.SimpleNamespace(variables=variables, layer_names=layer_names, extra_paths=extra_paths,
                                 path=path, layers=[], aux=None)
    if path == "jacobian":
        return plan
    if path == "bias":
        plan.bias_owners = owners
        plan.aux, plan.bias_indices = capture_model(model, [layer.output for layer in owners])
        return plan
    entries, tensors = [], []
    for layer in dict.fromkeys(owners):
        entry = types.SimpleNamespace(
            layer=layer, bn=own_batch_norm(layers, layer)[0],
            kernel_index=next((i for i, v in enumerate(variables) if v is layer.kernel), None),
            bias_index=next((i for i, v in enumerate(variables) if layer.bias is not None and v is layer.bias),
                            None))
        entry.input_index, entry.output_index = len(tensors), len(tensors) + 1
        tensors += [layer.input, layer.output]
        if entry.bn is not None:
            entry.bn_output_index = len(tensors)
            tensors.append(entry.bn.output)
        entries.append(entry)
    plan.aux, indices = capture_model(model, tensors)
    for entry in entries:
        for name in ("input_index", "output_index", "bn_output_index"):
            if hasattr(entry, name):
                setattr(entry, name, indices[getattr(entry, name)])
    plan.layers = entries
    return plan


def capture_model(model, tensors):
    """A functional model sharing `model`'s layers that also returns `tensors` (from the same forward pass).

    Returns the model and, for each tensor, its index among the outputs. A tensor that is already an
    output is taken from there (a duplicated output tensor would be a copy, disconnected from the loss).
    """
    outputs, indices = list(model.outputs), []
    for tensor in tensors:
        index = next((i for i, t in enumerate(outputs) if t is tensor), None)
        if index is None:
            outputs.append(tensor)
            index = len(outputs) - 1
        indices.append(index)
    return keras.Model(model.input, outputs, name=f"{model.name}_gradtail_capture"), indices


def functional_problem(model, patches):
    """Why the layer inputs and outputs of `model` cannot be captured per example ("" when they can)."""
    if patches is not None:
        return "patches give several pseudo-examples per input example"
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        return "the model is not functional (its layer inputs cannot be captured)"
    if len(outputs) != 1:
        return "the model has several outputs"
    return ""


def layer_problem(variable, layer, rank):
    """Why `variable` of a Dense / Conv2D `layer` has no analytic per-example form ("" when it has)."""
    if variable is not layer.kernel and variable is not layer.bias:
        return f"{variable.path!r} is neither the kernel nor the bias of its {type(layer).__name__} layer"
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        return f"layer {layer.name!r} uses LoRA or quantization"
    try:
        if len(layer.input.shape) != rank:
            return f"layer {layer.name!r} takes inputs of rank {len(layer.input.shape)}, not {rank}"
    except (AttributeError, ValueError):
        return f"layer {layer.name!r} has no unique functional input (shared layer?)"
    return ""


def dense_path_problem(model, layers, variables, owners, patches):
    """Why the Dense-only path does not apply ("" when it does): the analytic path's conditions, Dense only."""
    for variable, layer in zip(variables, owners):
        if type(layer) is not keras.layers.Dense:
            return functional_problem(model, patches) or f"{variable.path!r} does not belong to a keras.layers.Dense layer"
    return analytic_path_problem(model, layers, variables, owners, patches)


def analytic_path_problem(model, layers, variables, owners, patches):
    """Why the analytic path does not apply (empty string when it does)."""
    problem = functional_problem(model, patches)
    if problem:
        return problem
    for variable, layer in zip(variables, owners):
        if type(layer) is keras.layers.Dense:
            problem = layer_problem(variable, layer, rank=2)
        elif type(layer) is keras.layers.Conv2D:
            problem = layer_problem(variable, layer, rank=4)
            if not problem and layer.groups != 1:
                problem = f"layer {layer.name!r} is a grouped convolution (groups={layer.groups})"
            if not problem and layer.data_format != "channels_last":
                problem = f"layer {layer.name!r} uses data_format={layer.data_format!r}, not 'channels_last'"
            if not problem and layer.activation not in (None, keras.activations.linear):
                problem = f"Conv2D layer {layer.name!r} has an activation (use a separate activation layer)"
        else:
            problem = (f"{variable.path!r} belongs to a {type(layer).__name__} layer (the analytic path has "
                       "per-example gradients for keras.layers.Dense and keras.layers.Conv2D only)")
        if problem:
            return problem
    for layer in dict.fromkeys(owners):
        own, problem = own_batch_norm(layers, layer)
        if problem:
            return problem
        for later in layers[_position(layers, layer) + 1:]:
            if isinstance(later, keras.layers.BatchNormalization) and later is not own:
                return (f"batch normalization ({later.name!r}) after the selected layer {layer.name!r} couples "
                        "the examples (only a batch norm that alone consumes a selected Conv2D's output is "
                        "handled)")
    return ""


def _position(layers, layer):
    return next(i for i, candidate in enumerate(layers) if candidate is layer)


def own_batch_norm(layers, layer):
    """(batch norm, problem): the BatchNormalization that alone consumes Conv2D `layer`'s output, if any."""
    if type(layer) is not keras.layers.Conv2D:
        return None, ""
    consumers = []
    for candidate in layers:
        try:
            inputs = keras.tree.flatten(candidate.input)
        except (AttributeError, ValueError):
            continue
        if any(t is layer.output for t in inputs):
            consumers.append(candidate)
    norms = [c for c in consumers if isinstance(c, keras.layers.BatchNormalization)]
    if not norms:
        return None, ""
    bn = norms[0]
    if len(consumers) > 1:
        return None, (f"the output of {layer.name!r} feeds batch normalization ({bn.name!r}) and other layers "
                      f"({[c.name for c in consumers if c is not bn]})")
    if type(bn) is not keras.layers.BatchNormalization or bn.renorm:
        return None, f"batch normalization {bn.name!r} after {layer.name!r} is a subclass or uses renorm"
    if bn.axis not in (-1, 3):
        return None, f"batch normalization {bn.name!r} normalizes axis {bn.axis}, not the channels"
    return bn, ""


