"""Linear learning-rate warm-up in front of any Keras schedule."""

import keras
from keras import ops

from keras_longtail._internal import validation as _validation


@keras.saving.register_keras_serializable(package="keras_longtail")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Ramps the learning rate linearly to `peak` over `warmup_steps`, then follows `after`.

    `lr(t) = peak * (t + 1) / warmup_steps` for `t < warmup_steps`, else `after(t)`,
    with `t` the optimizer's step counter (0 at the first step). This is the
    warm-up of the LDAM-DRW CIFAR recipe (5 of 200 epochs) used by every
    CIFAR-LT paper in this toolkit. Unlike a closure, it serializes, so a model
    compiled with it saves to `.keras` and reloads with its optimizer, and
    `keras.models.clone_model` of a compiled model works.

    Args:
        after: the schedule (a `keras.optimizers.schedules.LearningRateSchedule`)
            followed once the warm-up ends; it is called with the same global step.
        warmup_steps: length of the ramp in optimizer steps, >= 1.
        peak: the learning rate reached at the end of the ramp, > 0.

    Returns:
        A `LearningRateSchedule` for any Keras optimizer.

    Example:

    >>> after = keras.optimizers.schedules.PiecewiseConstantDecay([80], [0.1, 0.001])
    >>> schedule = LinearWarmup(after, warmup_steps=5, peak=0.1)
    >>> [round(float(schedule(t)), 3) for t in (0, 4, 50, 90)]
    [0.02, 0.1, 0.1, 0.001]
    >>> optimizer = keras.optimizers.SGD(schedule, momentum=0.9)

    References:
        - Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
          2017 (arXiv:1706.02677): gradual warm-up.
        - Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
          Margin Loss", NeurIPS 2019 (arXiv:1906.07413): the CIFAR-LT schedule.
    """

    def __init__(self, after, warmup_steps, peak):
        if isinstance(after, dict):
            after = keras.saving.deserialize_keras_object(after)
        if not isinstance(after, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError("Expected `after` to be a keras.optimizers.schedules.LearningRateSchedule. "
                             f"Received: after={after!r}")
        self.after = after
        self.warmup_steps = _validation.check_int("warmup_steps", warmup_steps, minimum=1)
        self.peak = _validation.check_float("peak", peak, minimum=0.0, min_inclusive=False)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        ramp = self.peak * (step + 1.0) / self.warmup_steps
        return ops.where(step < self.warmup_steps, ramp, ops.cast(self.after(step), "float32"))

    def get_config(self):
        return {"after": keras.saving.serialize_keras_object(self.after),
                "warmup_steps": self.warmup_steps, "peak": self.peak}
