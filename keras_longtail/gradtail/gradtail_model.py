"""A functional `keras.Model` trained with GradTail."""

import keras

from keras_longtail.gradtail.gradtail_mixin import GradTailMixin


@keras.saving.register_keras_serializable(package="keras_longtail")
class GradTailModel(GradTailMixin, keras.Model):
    """A functional model (`GradTailModel(inputs, outputs, ...)`) whose `fit` uses GradTail.

    Same as `keras.Model(inputs, outputs)` plus GradTail's arguments (see
    `GradTailMixin` for the algorithm, the state and the metrics);
    `GradTailModel.from_model(model, ...)` wraps an existing functional model,
    sharing its layers. TensorFlow backend only. Saves and reloads as `.keras`
    with the GradTail state (`get_config()` is the functional graph plus
    `method_config()`). Inference (`predict`, `evaluate`) is the plain model's.

    Args:
        inputs, outputs: as for `keras.Model`.
        gradient_layers: layers or layer names whose trainable weights are
            selected. Defaults to `None` (the last two layers with a trainable
            kernel: their kernels and biases).
        gradient_variables: extra trainable variables (objects or paths).
            Defaults to `None`.
        pivot: p, finite. Defaults to `0.0`.
        decay: λ in [0, 1). Defaults to `0.99`.
        activation: a `GradTailActivation`. Defaults to
            `GradTailSigmoid(max_weight=3.0, sharpness=5.0)`.
        gradient_path: `"auto"`, `"dense"`, `"analytic"`, `"bias"` or
            `"jacobian"` (see `GradTailMixin`). Defaults to `"auto"`.
        patches: a `PatchStrategy` for dense outputs, or `None`. Defaults to `None`.
        name: model name. Defaults to `None`.

    Example:

    >>> import numpy as np
    >>> from keras_longtail.gradtail import GradTailSigmoid
    >>> inputs = keras.Input((2,))
    >>> hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    >>> logits = keras.layers.Dense(2, name="classifier")(hidden)
    >>> model = GradTailModel(inputs, logits, activation=GradTailSigmoid(max_weight=15.0))
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> model.gradtail_resolved_path, [v.path for v in model.gradtail_variables]
    ('dense', ['hidden/kernel', 'hidden/bias', 'classifier/kernel', 'classifier/bias'])
    >>> x, y = np.random.default_rng(0).normal(size=(64, 2)), np.arange(64) % 2
    >>> history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    >>> int(model.gradtail_step.numpy()), sorted(k for k in history.history if k.startswith("gradtail"))
    (4, ['gradtail_mean_weight', 'gradtail_sigma', 'gradtail_upweighted'])

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using
          Gradient-based Sample Weighting", arXiv:2201.05938 (2022).
    """

    def __init__(self, inputs, outputs, gradient_layers=None, gradient_variables=None, pivot=0.0, decay=0.99,
                 activation=None, gradient_path="auto", patches=None, name=None, **kwargs):
        super().__init__(inputs, outputs, name=name, gradient_layers=gradient_layers,
                         gradient_variables=gradient_variables, pivot=pivot, decay=decay, activation=activation,
                         gradient_path=gradient_path, patches=patches, **kwargs)

    @classmethod
    def from_model(cls, model, **kwargs):
        """Wraps the functional `model` (sharing its layers and weights) with GradTail arguments `kwargs`."""
        kwargs.setdefault("name", model.name)
        return cls(model.input, model.output, **kwargs)
