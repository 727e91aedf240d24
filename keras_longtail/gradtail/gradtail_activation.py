"""Base class of GradTail's weight activations f."""

import keras


@keras.saving.register_keras_serializable(package="keras_longtail")
class GradTailActivation:
    """Maps GradTail's distance x = |θ/σ − p| to a loss weight q = f(x).

    GradTail (Algorithm 1) needs f: [0, ∞) → [1, ∞) positive and monotonically
    decreasing: examples whose normalized gradient agreement θ/σ sits at the
    pivot p get the largest weight f(0) (`max_weight`), examples far from it a
    weight near 1. Subclasses implement `call(distance)` in `keras.ops` and
    `max_weight` (= f(0)), and list their arguments in `get_config`.

    Example:

    ```python
    @keras.saving.register_keras_serializable()
    class Step(GradTailActivation):
        def __init__(self, max_weight=3.0, width=0.5):
            self.max_weight, self.width = max_weight, width

        def call(self, distance):
            return ops.where(distance < self.width, self.max_weight, 1.0)

        def get_config(self):
            return {"max_weight": self.max_weight, "width": self.width}

    model = GradTailModel(inputs, outputs, activation=Step())
    ```
    """

    max_weight = None

    def __call__(self, distance):
        return self.call(keras.ops.convert_to_tensor(distance, dtype="float32"))

    def call(self, distance):
        raise NotImplementedError(f"{type(self).__name__} must implement `call(distance)`.")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
