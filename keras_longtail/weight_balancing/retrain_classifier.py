"""Second stage of weight balancing: retrain the classifier on frozen, precomputed features."""

import keras
import numpy as np

from keras_longtail._internal import validation as _validation
from keras_longtail.losses.class_balanced_crossentropy import ClassBalancedCrossentropy
from keras_longtail.weight_balancing.per_class_max_norm import PerClassMaxNorm
from keras_longtail.weight_balancing.per_class_max_norm_projection import PerClassMaxNormProjection

PROJECTIONS = ("epoch", "step", None)
# Images per forward pass when the features of an unbatched dataset or of arrays are extracted.
_EXTRACTION_BATCH = 256
# Examples on which the classifier copy is checked to reproduce the model's outputs.
_PROBE = 8


def _get_layer(model, name, argument):
    try:
        return model.get_layer(name)
    except ValueError as error:
        raise ValueError(
            f"Expected `{argument}` to name a layer of the model. Received: {argument}={name!r} "
            f"(model {model.name!r} has {[layer.name for layer in model.layers]})") from error


def _extract(extractor, x, y):
    """Features and labels of every example in one pass without augmentation, and the first few inputs."""
    if y is not None:
        features = extractor.predict(x, batch_size=_EXTRACTION_BATCH, verbose=0)
        return np.asarray(features), np.asarray(y).reshape(-1), np.asarray(x[:_PROBE])
    if not hasattr(x, "element_spec"):
        raise TypeError(
            "Expected `x` to be a tf.data.Dataset of (inputs, labels) when `y` is None, or arrays with `y`. "
            f"Received: x of type {type(x).__name__}")
    import tensorflow as tf

    if int(x.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError("Expected a finite dataset (one pass over the training data); received an infinite one "
                         "(remove `.repeat()`).")
    input_rank = len(extractor.inputs[0].shape)
    if len(x.element_spec[0].shape) == input_rank - 1:  # unbatched examples, as the `load_*_lt` loaders give
        x = x.batch(_EXTRACTION_BATCH)
    features, labels, probe = [], [], None
    for batch in x:
        features.append(np.asarray(extractor.predict_on_batch(batch[0])))
        labels.append(np.asarray(batch[1]).reshape(-1))
        probe = np.asarray(batch[0][:_PROBE]) if probe is None else probe
    if not features:
        raise ValueError("Expected training data with at least one example. Received an empty dataset.")
    return np.concatenate(features), np.concatenate(labels), probe


def retrain_classifier(model, x, y=None, class_counts=None, features="features", classifier="classifier",
                       epochs=10, batch_size=64, learning_rate=0.01, momentum=0.9, weight_decay=0.01,
                       beta=0.9999, max_norm=None, thresh=0.1, projection="epoch", reinitialize=False,
                       callbacks=None, verbose=0):
    """Retrains a model's classifier on its frozen features with the weight-balancing recipe.

    The second stage of weight balancing (paper Sec. 3.3). Stage 1 is an
    ordinary `model.fit` with cross-entropy and a tuned weight decay; this
    function then

    1. computes the features (output of the layer `features`) of every training
       example once, in inference mode and without augmentation;
    2. trains a copy of the Dense layer `classifier` (its stage-1 weights, or a
       fresh initialization with `reinitialize=True`) on them with the
       class-balanced cross-entropy (β), SGD with momentum and a cosine learning
       rate decaying to 0, decoupled weight decay, and the per-class MaxNorm
       constraint with δ = min r + thresh · (max r − min r) set from the stage-1
       class norms r (or `max_norm`), projected after every epoch (the paper's
       code) or every step;
    3. writes the new weights back into `model`'s classifier. Nothing else in the
       model changes.

    Because the features are computed once, the second stage costs seconds
    (one inference pass plus a linear model's training). It writes into
    `model` only when it completes, so a run killed during stage 2 leaves the
    stage-1 model as it was: restart stage 2 from the beginning (with the
    same seed it gives the same classifier) rather than from a checkpoint
    (its `fit` shuffles the features anew, so a resumed epoch would see other
    batches).

    Defaults follow the paper's code, converted to this loss and to Keras:
    10 epochs, batch 64, lr 0.01 with momentum 0.9 and cosine decay, β = 0.9999,
    thresh = 0.1, the stage-1 classifier as the starting point, projection per
    epoch. The code's weight decay (PyTorch coupled 0.1) is applied to a loss
    about 1/C the scale of `ClassBalancedCrossentropy` (a binary cross-entropy
    on softmax probabilities averaged over classes) and was tuned for it; the
    default here, decoupled 0.01, is the value tuned on Digits-LT for this loss
    (`benchmarks/weight_balancing_digits.py`) — tune it on your data, it is
    cheap (`tune_weight_decay`).

    Differences from the code: its second stage keeps augmenting the images and
    lets BatchNorm update its statistics (the whole network runs in training
    mode while only the classifier's parameters are optimized), so its features
    drift during stage 2; here features come from the frozen network in
    inference mode, as `trainable=False` would do in Keras, which is what makes
    precomputing them possible. The code's cosine schedule steps per epoch
    (its 10th epoch runs at learning rate 0); here it decays per step.

    Args:
        model: a trained functional model whose `classifier` layer (Dense-like,
            with `kernel` and `bias`) is applied to the output of its `features`
            layer and produces the model's output.
        x: a finite `tf.data.Dataset` of `(inputs, labels)` (batched or
            unbatched) when `y` is `None`, else the training inputs (array).
            Pass the un-augmented training data.
        y: integer training labels when `x` is an array. Defaults to `None`.
        class_counts: per-class training counts for the class-balanced weights.
            Defaults to `None` (counted from the labels).
        features: name of the feature layer. Defaults to `"features"`.
        classifier: name of the classifier layer. Defaults to `"classifier"`.
        epochs: epochs over the features, >= 1. Defaults to `10`.
        batch_size: >= 1. Defaults to `64`.
        learning_rate: initial learning rate of the cosine decay, > 0. Defaults
            to `0.01`.
        momentum: SGD momentum in [0, 1). Defaults to `0.9`.
        weight_decay: decoupled weight decay λ_d of `keras.optimizers.SGD`, >= 0
            (see `decoupled_weight_decay`). Defaults to `0.01`.
        beta: β of the class-balanced loss in [0, 1); 0 is plain cross-entropy.
            Defaults to `0.9999`.
        max_norm: MaxNorm radius δ > 0, or `None` to set it from the stage-1
            classifier with `thresh`. Defaults to `None`.
        thresh: in [0, 1], used when `max_norm` is `None`. Defaults to `0.1`.
        projection: `"epoch"` (after every epoch, the paper's code), `"step"`
            (a `PerClassMaxNorm` kernel constraint, after every step) or `None`
            (no MaxNorm). Defaults to `"epoch"`.
        reinitialize: start from a freshly initialized classifier instead of the
            stage-1 weights (δ still comes from the stage-1 norms). Defaults to
            `False`.
        callbacks: extra callbacks for the classifier's `fit` (e.g. a
            `WeightNormMonitor`, which finds the copy under the same name).
        verbose: verbosity of that `fit`. Defaults to `0`.

    Returns:
        The `keras.callbacks.History` of the classifier's training (with the
        radius in `history.history["max_norm"]` when projecting per epoch).

    Example:

    ```python
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=5e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(augmented_train, epochs=200)                  # stage 1
    retrain_classifier(model, loaded.train)                 # stage 2, seconds
    ```

    >>> import numpy as np
    >>> from keras_longtail.models import mlp
    >>> model = mlp(num_classes=3, input_shape=(4,), hidden_units=(8,))
    >>> x = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
    >>> y = np.repeat([0, 1, 2], [40, 15, 5])
    >>> hidden_before = model.get_layer("hidden1").get_weights()[0].copy()
    >>> history = retrain_classifier(model, x, y, epochs=2)
    >>> sorted(history.history), np.array_equal(model.get_layer("hidden1").get_weights()[0], hidden_before)
    (['loss', 'max_norm'], True)

    References:
        - Alshammari et al., "Long-Tailed Recognition via Weight Balancing",
          CVPR 2022, arXiv:2203.14197 (Sec. 3.3, Table 1).
        - Kang et al., "Decoupling Representation and Classifier for Long-Tailed
          Recognition", ICLR 2020, arXiv:1910.09217.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected `model` to be a keras.Model. Received: model={model!r}")
    feature_layer = _get_layer(model, features, "features")
    head_layer = _get_layer(model, classifier, "classifier")
    if getattr(head_layer, "kernel", None) is None or getattr(head_layer, "bias", None) is None:
        raise ValueError(
            f"Expected `classifier` to name a layer with a kernel and a bias (Dense). Received: {head_layer!r}")
    epochs = _validation.check_int("epochs", epochs, minimum=1)
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    learning_rate = _validation.check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    momentum = _validation.check_float("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
    weight_decay = _validation.check_float("weight_decay", weight_decay, minimum=0.0)
    beta = _validation.check_float("beta", beta, minimum=0.0, maximum=1.0, max_inclusive=False)
    if max_norm is not None:
        max_norm = _validation.check_float("max_norm", max_norm, minimum=0.0, min_inclusive=False)
    thresh = _validation.check_float("thresh", thresh, minimum=0.0, maximum=1.0)
    if projection not in PROJECTIONS:
        raise ValueError(f"Expected `projection` to be 'epoch', 'step' or None. Received: projection={projection!r}")

    extractor = keras.Model(model.inputs, feature_layer.output, name=f"{model.name}_features")
    feature_values, labels, probe = _extract(extractor, x, y)
    num_classes = int(head_layer.kernel.shape[-1])
    if labels.size == 0:
        raise ValueError("Expected training data with at least one example. Received none.")
    if class_counts is None:
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"Expected labels in [0, {num_classes}). Received labels from {labels.min()} "
                             f"to {labels.max()}")
        class_counts = np.bincount(labels.astype("int64"), minlength=num_classes).tolist()
    loss = ClassBalancedCrossentropy(
        class_counts, beta=beta, from_logits=head_layer.get_config().get("activation", "linear") == "linear")
    if len(loss.class_counts) != num_classes:
        raise ValueError(f"Expected `class_counts` with {num_classes} entries (the classifier's classes). "
                         f"Received {len(loss.class_counts)}: class_counts={class_counts!r}")

    constraint = None
    if projection is not None:
        constraint = (PerClassMaxNorm(max_norm) if max_norm is not None
                      else PerClassMaxNorm.from_kernel(head_layer.kernel, thresh=thresh))
    config = head_layer.get_config()
    if projection == "step":
        config["kernel_constraint"] = constraint
    copy = type(head_layer).from_config(config)
    inputs = keras.Input(feature_values.shape[1:], name="features")
    head = keras.Model(inputs, copy(inputs), name=f"{model.name}_classifier")
    if not reinitialize:
        copy.set_weights(head_layer.get_weights())
        # The copy must reproduce the model: the same outputs from the extracted features.
        expected = np.asarray(model.predict_on_batch(probe))
        got = np.asarray(head.predict_on_batch(feature_values[:len(probe)]))
        if expected.shape != got.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-4):
            raise ValueError(f"Expected the layer {classifier!r} to be applied directly to the output of "
                             f"{features!r} and to produce the model's output; their composition differs.")

    steps = int(np.ceil(len(labels) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)
    head.compile(keras.optimizers.SGD(schedule, momentum=momentum, weight_decay=weight_decay or None), loss=loss)
    all_callbacks = list(callbacks or [])
    if projection == "epoch":
        # First, so that later callbacks (a WeightNormMonitor) see the projected kernel.
        all_callbacks.insert(0, PerClassMaxNormProjection(copy, max_norm=constraint.max_norm))
    history = head.fit(feature_values, labels, batch_size=batch_size, epochs=epochs, shuffle=True,
                       callbacks=all_callbacks, verbose=verbose)
    head_layer.set_weights(copy.get_weights())
    return history

