"""A functional Keras model trained with GBG's multi-objective step."""

import keras

from keras_longtail.gbg.gbg_mixin import GBGMixin


@keras.saving.register_keras_serializable(package="keras_longtail")
class GBGModel(GBGMixin, keras.Model):
    """A functional model whose `fit` uses GBG's group-wise min-norm step.

    `GBGModel(inputs, outputs, grouping=...)` is `keras.Model(inputs, outputs)`
    with the train step of `GBGMixin` (see there for the step, `mode` and the
    other arguments); `GBGModel.from_model(model, grouping)` wraps an existing
    functional model, sharing its layers and weights. Compile it with any
    optimizer and loss: the optimizer is used as is (learning rate, schedules,
    weight decay), nothing is wrapped. Saves and reloads as `.keras`.

    Only training changes: `predict`, `evaluate` and the saved graph are those of
    the underlying model.

    Args:
        inputs, outputs: as for a functional `keras.Model`.
        grouping: a `keras_longtail.gbg.ClassGrouping` covering the model's classes,
            or `None` when the model is compiled with a
            `keras_longtail.optimizers.GBGOptimizer` that holds it.
        mode, normalization, solver, head_layer, max_iterations, tolerance, solve_every, group_loss, weighting:
            see `GBGMixin`.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:

    ```python
    network = keras_longtail.models.resnet32(10)
    # once, before training, on the un-augmented training set (the GBG code's grouping)
    grouping = keras_longtail.gbg.group_classes(network, train.batch(256), num_groups=4)
    model = GBGModel.from_model(network, grouping)  # the GBG code's step: mode="backbone", "loss+"
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(train_batches, epochs=200)
    ```

    >>> import numpy as np
    >>> from keras_longtail import models
    >>> from keras_longtail.gbg import ClassGrouping
    >>> network = models.mlp(4, (3,), hidden_units=(8,))
    >>> model = GBGModel.from_model(network, ClassGrouping([0, 0, 1, 1]))
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> _ = model.fit(np.ones((8, 3)), np.arange(8) % 4, verbose=0)
    >>> model.grouping.num_groups, model.predict(np.ones((2, 3)), verbose=0).shape
    (2, (2, 4))
    """

    @classmethod
    def from_model(cls, model, grouping=None, **kwargs):
        """Wraps a functional `model` (its layers and weights are shared)."""
        kwargs.setdefault("name", model.name)
        return cls(model.inputs, model.outputs, grouping=grouping, **kwargs)
