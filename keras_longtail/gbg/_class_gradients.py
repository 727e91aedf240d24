"""Per-class average gradients (GBG Algorithm 1, lines 1-3), exact or sketched."""

import keras
import numpy as np

from keras_longtail._internal import backend as _backend

# Refuse to hold more than this many floats for the exact per-class gradients (512 MB).
MAX_EXACT_ENTRIES = 2 ** 27


def default_loss(y_true, logits):
    """Per-example sparse softmax cross-entropy on logits."""
    return keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)


def _labels(y):
    tf = _backend.import_tensorflow()
    return tf.cast(tf.reshape(y, [-1]), tf.int32)


def classifier_gradients(model, dataset, layer_name, num_classes, projection_dim, loss, training, seed):
    """Sums over each class of the classifier's (kernel, bias) gradient a (dL/dz)^T.

    Exact: (K, (D + 1) K). Sketched: a TensorSketch (Pham & Pagh 2013) of the flattened
    outer product, two CountSketches of a = [features, 1] and of dL/dz combined by FFT,
    dimension `projection_dim`; inner products are preserved in expectation.
    """
    tf = _backend.import_tensorflow()
    layer = model.get_layer(layer_name)
    split = keras.Model(model.inputs, [layer.input, model.outputs[0]])
    width = int(layer.input.shape[-1]) + 1
    if projection_dim is None:
        _check_size(num_classes, width * num_classes)
    else:
        rng = np.random.default_rng(seed)
        sketch_a = _count_sketch_matrix(rng, width, projection_dim)
        sketch_d = _count_sketch_matrix(rng, num_classes, projection_dim)

    @tf.function
    def batch_sums(x, y):
        labels = _labels(y)
        features, logits = split(x, training=training)
        # In float32 whatever the model's dtype policy (mixed_bfloat16 / mixed_float16 compute in 16 bits):
        # the gradients are summed over the whole dataset.
        features, logits = tf.cast(features, tf.float32), tf.cast(logits, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            per_example = loss(labels, logits)
            total = tf.reduce_sum(per_example)
        delta = tape.gradient(total, logits)  # row i: dl_i / dz_i
        a = tf.concat([features, tf.ones_like(features[:, :1])], axis=-1)
        one_hot = tf.one_hot(labels, num_classes, dtype=a.dtype)
        counts = tf.reduce_sum(one_hot, axis=0)
        if projection_dim is None:
            sums = tf.reshape(tf.einsum("bk,bd,bj->kdj", one_hot, a, delta), [num_classes, -1])
        else:
            fa = tf.signal.rfft(tf.matmul(a, sketch_a))
            fd = tf.signal.rfft(tf.matmul(delta, sketch_d))
            sketch = tf.signal.irfft(fa * fd, fft_length=[projection_dim])
            sums = tf.math.unsorted_segment_sum(sketch, labels, num_classes)
        return sums, counts

    return _accumulate(dataset, batch_sums)


def backbone_gradients(model, dataset, exclude_layer, num_classes, projection_dim, loss, training, seed):
    """Sums over each class of the gradient of all trainable weights but `exclude_layer`'s.

    One forward per batch, one backward per class present in the batch (the class's
    summed loss), with batch norm as in training. Exact: (K, P). Sketched: a CountSketch
    of the P-vector into `projection_dim` buckets (random bucket and sign per weight).
    """
    tf = _backend.import_tensorflow()
    excluded = {id(v) for v in model.get_layer(exclude_layer).trainable_variables} if exclude_layer else set()
    variables = [v for v in model.trainable_variables if id(v) not in excluded]
    if not variables:
        raise ValueError("The model has no trainable weights outside the classifier layer "
                         f"{exclude_layer!r}: use gradients='classifier'.")
    sizes = [int(np.prod(v.shape)) for v in variables]
    if projection_dim is None:
        _check_size(num_classes, sum(sizes))
    else:
        rng = np.random.default_rng(seed)
        buckets = [tf.constant(rng.integers(0, projection_dim, size), tf.int32) for size in sizes]
        signs = [tf.constant(rng.choice([-1.0, 1.0], size), tf.float32) for size in sizes]
        width = projection_dim

    def flatten(gradients):
        if projection_dim is None:
            return tf.concat([tf.reshape(tf.cast(g, tf.float32), [-1]) for g in gradients], axis=0)
        total = tf.zeros([width])
        for g, bucket, sign in zip(gradients, buckets, signs):
            total += tf.math.unsorted_segment_sum(tf.reshape(tf.cast(g, tf.float32), [-1]) * sign, bucket, width)
        return total

    @tf.function
    def class_gradient(x, labels, k):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x, training=training), tf.float32)  # the loss in float32 under mixed precision
            per_example = loss(labels, logits)
            total = tf.reduce_sum(tf.where(tf.equal(labels, k), per_example, tf.zeros_like(per_example)))
        gradients = tape.gradient(total, variables)
        gradients = [tf.zeros_like(v) if g is None else g for g, v in zip(gradients, variables)]
        return flatten(gradients)

    def batch_sums(x, y):
        labels = _labels(y)
        counts = np.bincount(labels.numpy(), minlength=num_classes).astype(np.float64)
        rows = {}
        for k in np.flatnonzero(counts):
            rows[int(k)] = class_gradient(x, labels, tf.constant(int(k), tf.int32)).numpy()
        return rows, counts

    return _accumulate(dataset, batch_sums)


def _accumulate(dataset, batch_sums):
    sums, counts = None, None
    for element in dataset:
        x, y = _unpack(element)
        batch, batch_counts = batch_sums(x, y)
        batch_counts = np.asarray(batch_counts, np.float64)
        if isinstance(batch, dict):
            if sums is None:
                width = len(next(iter(batch.values())))
                sums, counts = np.zeros((batch_counts.size, width)), np.zeros(batch_counts.size)
            for k, row in batch.items():
                sums[k] += row
        else:
            batch = np.asarray(batch, np.float64)
            if sums is None:
                sums, counts = np.zeros_like(batch), np.zeros(batch_counts.size)
            sums += batch
        counts += batch_counts
    if sums is None or counts.sum() == 0:
        raise ValueError("Expected `dataset` to hold at least one example. Received an empty dataset.")
    averages = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
    return averages, counts


def _unpack(element):
    if isinstance(element, dict):
        return element.get("image", element.get("features")), element["label"]
    if isinstance(element, (tuple, list)) and len(element) >= 2:
        return element[0], element[1]
    raise ValueError("Expected `dataset` elements to be batched `(features, label)` tuples. "
                     f"Received an element of type {type(element).__name__}")


def _check_size(num_classes, width):
    if num_classes * width > MAX_EXACT_ENTRIES:
        raise ValueError(
            f"Exact per-class gradients would hold {num_classes} x {width} = {num_classes * width:,} floats "
            f"(more than {MAX_EXACT_ENTRIES:,}). Pass `projection_dim` (e.g. 1024) to sketch them.")


def _count_sketch_matrix(rng, size, width):
    """Dense (size, width) CountSketch: one random +-1 per row in a random column."""
    matrix = np.zeros((size, width), np.float32)
    matrix[np.arange(size), rng.integers(0, width, size)] = rng.choice([-1.0, 1.0], size)
    return matrix
