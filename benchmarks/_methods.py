"""The methods the cost benchmarks measure, built one way for every measure.

Each cost variant names the registered method it measures (`keras_longtail.recipes.METHODS`,
checked when this module is imported) and is built here, on the network the benchmark gives
it, through the public API only: the step-time (`overhead`, `gradtail_overhead`,
`gbg_overhead`), peak-memory (`peak_memory`) and restart-cost (`restart_cost`) benchmarks
share these builders instead of importing each other. Each benchmark keeps its own
optimizer and data, as its results have always been measured.
"""

from keras_longtail import recipes

CLASSES = 10  # CIFAR-10 shapes throughout

# cost variant -> the registered method it measures
VARIANTS = {
    "ce": "ce",
    "gala": "gala",
    "gala-official": "gala",
    "gradtail-classifier": "gradtail",  # the classifier's kernel and bias (analytic Dense path)
    "gradtail-last-two": "gradtail",  # GradTail's default selection (last 3x3 conv + classifier, analytic path)
    "gradtail-last-two-jacobian": "gradtail",  # the same selection on the generic jacobian path
    "gbg-exact": "gbg",
    "gbg-exact-solve4": "gbg",  # alpha re-solved every `solve_every` steps, reused between
    "gbg-representation": "gbg",
    "async-phase-two": "async",  # the dual-phase phase-II step
}
for _variant, _method in VARIANTS.items():
    recipes.get_method(_method)  # a cost variant of an unregistered method is an error at import


def method_of(variant):
    """The registered method `variant` measures; a `ValueError` names the known variants otherwise."""
    if variant not in VARIANTS:
        raise ValueError(f"Expected a cost variant in {list(VARIANTS)}. Received: variant={variant!r}")
    return VARIANTS[variant]


def cross_entropy():
    import keras

    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def loss_and_callbacks(variant, num_classes=CLASSES):
    """(loss, fit callbacks) of a loss-only variant: `ce`, or `gala` / `gala-official` (`GALALoss` with the
    method's registered accumulation, or the official one, and the `GALAAccumulator` callback)."""
    if variant == "ce":
        return cross_entropy(), []
    if variant in ("gala", "gala-official"):
        from keras_longtail import callbacks
        from keras_longtail import losses

        accumulation = ("official" if variant == "gala-official"
                        else recipes.get_method("gala").defaults["gala_accumulation"])
        return losses.GALALoss(num_classes, accumulation=accumulation), [callbacks.GALAAccumulator()]
    raise ValueError(f"Expected a loss variant in ['ce', 'gala', 'gala-official']. Received: variant={variant!r}")


def wrap(variant, network, grouping=None, solve_every=4):
    """`network` wrapped for a model variant: `gradtail-*` (`GradTailModel`) or `gbg-*` (`GBGModel` with
    `grouping`; `gbg-exact-solve4` re-solves alpha every `solve_every` steps)."""
    from keras_longtail.training import GBGModel
    from keras_longtail.training import GradTailModel

    if variant == "gradtail-classifier":
        return _checked_path(GradTailModel.from_model(network, gradient_layers=["classifier"]), "dense")
    if variant == "gradtail-last-two":
        return _checked_path(GradTailModel.from_model(network), "analytic")
    if variant == "gradtail-last-two-jacobian":
        return GradTailModel.from_model(network, gradient_path="jacobian")
    if variant == "gbg-exact":
        return GBGModel.from_model(network, grouping, mode="exact")
    if variant == "gbg-exact-solve4":
        return GBGModel.from_model(network, grouping, mode="exact", solve_every=solve_every)
    if variant == "gbg-representation":
        return GBGModel.from_model(network, grouping, mode="representation")
    raise ValueError(f"Expected a gradtail-* or gbg-* variant of {list(VARIANTS)}. Received: variant={variant!r}")


def _checked_path(model, path):
    if model.gradtail_resolved_path != path:
        raise RuntimeError(f"Expected GradTail's gradient path to resolve to {path!r} on ResNet-32. "
                           f"Received: {model.gradtail_resolved_path!r}")
    return model


def async_phase_two(classes=CLASSES):
    """The compiled phase-II model of `DualPhaseTraining` on ResNet-32, as `keras_longtail.recipes.run_training`
    builds it for method "async", without real phase-I training: the memory bank is fitted on a small synthetic
    data set of 16 images per class (CIFAR-10-LT IF 100 class counts); SGD 0.01 with momentum 0.9."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_longtail import models
    from keras_longtail import training

    class_counts = [int(round(5000 * 0.01 ** (k / (classes - 1)))) for k in range(classes)]  # CIFAR-10-LT
    dual = training.DualPhaseTraining(models.resnet32(classes), class_counts)
    per_class = 16  # >= the memory size (10)
    rng = np.random.default_rng(1)
    bank_images = rng.uniform(size=(per_class * classes, 32, 32, 3)).astype("float32")
    bank_labels = np.repeat(np.arange(classes), per_class)
    dual.build_memory_bank(tf.data.Dataset.from_tensor_slices((bank_images, bank_labels)))
    model = dual.build_phase_two_model()
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=cross_entropy())
    return model


def long_tailed_batch(batch_size, classes=CLASSES, groups=4, seed=0):
    """(images, labels, grouping): one random CIFAR-shaped batch with a CIFAR-10-LT (IF 100) label profile.

    Every class, so every one of the `groups` contiguous groups, is present (`batch_size` >= `classes`).
    """
    import numpy as np

    from keras_longtail.gbg import ClassGrouping

    if batch_size < classes:
        raise ValueError(f"Expected `batch_size` >= `classes` (every class in the batch). "
                         f"Received: batch_size={batch_size}, classes={classes}")
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(batch_size, 32, 32, 3)).astype("float32")
    frequencies = 0.01 ** (np.arange(classes) / (classes - 1))  # CIFAR-10-LT IF 100 profile
    labels = rng.choice(classes, size=batch_size, p=frequencies / frequencies.sum())
    labels[:classes] = np.arange(classes)  # every class, so every group, present
    grouping = ClassGrouping([k * groups // classes for k in range(classes)], groups)
    return images, labels, grouping
