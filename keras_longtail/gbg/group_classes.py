"""Gradient-balancing grouping (GBG Algorithm 1) of a model's classes."""

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail.gbg import _class_gradients
from keras_longtail.gbg.group_by_similarity import group_by_similarity

GRADIENTS = ("classifier", "backbone")


def group_classes(model, dataset, num_groups=4, *, gradients="backbone", layer="classifier",
                  projection_dim=None, loss=None, training=False, seed=None, keep_similarity=True):
    """Groups the classes of `model` by the similarity of their average gradients (GBG Alg. 1).

    One pass over `dataset` with the weights fixed computes, for every class k, the
    average gradient g_k of the loss of its examples; then `group_by_similarity`
    cuts the cosine-similarity graph (affinity = cosine + 1, spectral clustering
    with `assign_labels="cluster_qr"`, as the GBG code) into `num_groups` groups.
    Run it once, on the initialized (or pretrained) model, before training.

    The defaults are what the GBG code runs (`utils.py:cifar_partition_by_grad_nogroup_bcl`,
    called once in `cifar_Group_full.py:main_worker` before epoch 0 on the freshly
    initialized model, over `partition_loader`: the long-tailed training set with
    the test transform, i.e. no augmentation): backbone gradients, batch norm in
    inference mode (`model.eval()`), per-class mean gradients, affinity cosine + 1,
    `spectral_clustering(..., assign_labels="cluster_qr")`, 4 groups. Pass it the
    un-augmented training set and call it before `fit`.

    Which gradients (the similarity is only as good as the gradient it compares):

    - `gradients="backbone"` (default, the GBG code): all trainable weights except
      `layer`'s (the code skips `fc` and BCL's `head`/`head_center`). One backward
      per class present in each batch: for C classes about C training steps per
      batch (CIFAR-100: about ten epochs' worth of backward passes, once).
    - `gradients="classifier"`: the gradient of the Dense layer named `layer`
      (kernel and bias), per example a (dL/dz)^T with a = [features, 1]: computed
      analytically from one forward pass per batch (no backward through the
      network), so grouping costs about one evaluation epoch. Two classes are
      similar when their features are alike *and* their logit gradients agree.
      Not what the paper's code does; a cheap alternative for many classes.

    `projection_dim=None` keeps the exact K x D gradients (refused above 2^27
    floats, with an error naming `projection_dim`). With `projection_dim=p` each
    gradient is replaced by a fixed random sketch of dimension p (TensorSketch of the
    classifier's outer product; CountSketch of the backbone's weights), which
    preserves inner products in expectation: the cosines are then estimates with
    error of order 1/sqrt(p) of the norms (p = 1024 -> ~0.03), which is small next to
    the cluster structure spectral clustering uses, and memory is K x p. For
    thousands of classes this is the only practical choice (8,142 classes x a
    2049 x 8142 classifier gradient would be 543 GB).

    Args:
        model: a functional Keras model ending in a Dense layer named `layer`
            (e.g. `keras_longtail.models.resnet32`), outputting logits.
        dataset: a finite, batched `tf.data.Dataset` (or iterable) of
            `(features, labels)`; use the un-augmented training set. Classes absent
            from it get a zero gradient (similarity 0 to everything).
        num_groups: number of groups G, in [1, number of classes]. Defaults to 4.
        gradients: `"backbone"` or `"classifier"`. Defaults to `"backbone"` (the
            GBG code, `utils.py:cifar_partition_by_grad_nogroup_bcl`).
        layer: name of the classifier Dense layer. Defaults to `"classifier"`.
        projection_dim: sketch dimension, or `None` for exact gradients. Defaults to `None`.
        loss: callable `(labels, logits) -> per-example losses`. Defaults to softmax
            cross-entropy on logits.
        training: call the model in training mode (batch-norm statistics of the
            batch) instead of inference mode (batch-norm moving averages, at
            initialization mean 0 and variance 1). Defaults to `False`, as the GBG
            code (`model.eval()` in `cifar_partition_by_grad_nogroup_bcl`). The
            model's non-trainable state (moving averages) is restored afterwards.
        seed: seed of the sketch and of the spectral embedding. Defaults to `None`.
        keep_similarity: keep the K x K matrix in the result. Defaults to `True`.

    Returns:
        A `ClassGrouping`; its `class_counts_` attribute holds the number of examples
        seen per class.

    Example:

    >>> import numpy as np, tensorflow as tf, keras
    >>> from keras_longtail import models
    >>> model = models.mlp(6, (8,), hidden_units=(16,))
    >>> x = np.random.default_rng(0).normal(size=(60, 8)).astype("float32")
    >>> y = np.arange(60) % 6
    >>> grouping = group_classes(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(20), 2, seed=0)
    >>> grouping.num_groups, len(grouping.groups)
    (2, 6)

    References:
        Li et al., "Long-Tailed Learning as Multi-Objective Optimization", AAAI 2024,
        https://arxiv.org/abs/2310.20490 (Algorithm 1, Eq. 7-9).
        Pham & Pagh, "Fast and scalable polynomial kernels via explicit feature maps",
        KDD 2013 (TensorSketch).
    """
    _backend.require_tensorflow_backend("group_classes")
    _validation.check_choice("gradients", gradients, GRADIENTS)
    if projection_dim is not None:
        projection_dim = _validation.check_int("projection_dim", projection_dim, minimum=1)
    try:
        model.get_layer(layer)
    except ValueError:
        raise ValueError(f"Expected `model` to have a classifier layer named `layer`={layer!r}. "
                         f"Its layers are {[l.name for l in model.layers]}") from None
    num_classes = int(model.outputs[0].shape[-1])
    num_groups = _validation.check_int("num_groups", num_groups, minimum=1, maximum=num_classes)
    loss = _class_gradients.default_loss if loss is None else loss
    compute = (_class_gradients.classifier_gradients if gradients == "classifier"
               else _class_gradients.backbone_gradients)
    # training=True moves batch-norm statistics: put them back, grouping must not change the model
    state = [v.numpy() for v in model.non_trainable_variables]
    try:
        averages, counts = compute(model, dataset, layer, num_classes, projection_dim, loss, training, seed)
    finally:
        for variable, value in zip(model.non_trainable_variables, state):
            variable.assign(value)
    grouping = group_by_similarity(averages, num_groups, seed=seed, keep_similarity=keep_similarity)
    grouping.class_counts_ = [int(c) for c in counts]
    return grouping
