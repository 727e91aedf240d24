"""SGD with momentum in PyTorch's form: the velocity holds gradients, the learning rate scales each step."""

import keras
from keras import ops

from keras_longtail._internal import validation as _validation


@keras.saving.register_keras_serializable(package="keras_longtail")
class PyTorchSGD(keras.optimizers.SGD):
    """Stochastic gradient descent whose momentum buffer sums gradients, as `torch.optim.SGD` does.

    With learning rate `η_t` at step `t` (from a schedule), momentum `μ` and gradient `g_t`:

    ```
    b_t = μ b_{t-1} + g_t              (b_0 = 0)
    w_t = w_{t-1} - η_t b_t            (nesterov: w_t = w_{t-1} - η_t (g_t + μ b_t))
    ```

    `keras.optimizers.SGD` keeps the learning rate inside its velocity instead
    (`v_t = μ v_{t-1} - η_t g_t`, `w_t = w_{t-1} + v_t`). The two are the same
    while `η` is constant and differ when it changes: after a step decay from
    `η` to `η'`, Keras' velocity still carries steps of the old size, which fade
    as `μ^k` (about `1 / (1 - μ)` = 10 steps' worth at `μ = 0.9`), while here
    every step after the change is scaled by `η'`. In the Keras form this is
    Goyal et al.'s "momentum correction" (`v ← (η_t / η_{t-1}) v` before each
    step). The papers' code in this toolkit is PyTorch, and its recipes drop the
    learning rate by 10x or 100x in one step (the LDAM-DRW schedule), so this is
    the optimizer that reproduces their updates at those drops. TensorFlow 1's
    `MomentumOptimizer` and optax's `sgd` use this form too.

    Everything else is `keras.optimizers.SGD`'s: `weight_decay` is Keras'
    decoupled decay (`w ← w - η_t λ w` before the step; PyTorch's own
    `weight_decay` is an L2 term added to `g_t`), as are gradient clipping, loss
    scaling, EMA and gradient accumulation. `momentum=0` is plain SGD, equal to
    Keras' (no buffer is created).

    Args:
        learning_rate: a float, a `keras.optimizers.schedules.LearningRateSchedule`
            or a callable; the step size `η_t`. Defaults to `0.01`.
        momentum: `μ`, a float in [0, 1]. Defaults to `0.0`.
        nesterov: whether to take PyTorch's Nesterov step. Defaults to `False`.
        **kwargs: the other keyword arguments of `keras.optimizers.SGD`
            (`weight_decay`, `clipnorm`, `name`, ...).

    Returns:
        A Keras optimizer (a subclass of `keras.optimizers.SGD`).

    Example:

    >>> schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1], [0.1, 0.001])
    >>> optimizer = PyTorchSGD(schedule, momentum=0.9)
    >>> w = keras.Variable([1.0])
    >>> for _ in range(4):
    ...     _ = optimizer.apply([keras.ops.ones(1)], [w])
    >>> round(float(w.numpy()[0]), 5)  # 1 - 0.1 (1 + 1.9) - 0.001 (2.71 + 3.439)
    0.70385
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> model.compile(optimizer=PyTorchSGD(0.1, momentum=0.9, weight_decay=5e-3), loss="mse")

    References:
        - Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
          2017 (arXiv:1706.02677), section 2.1 (momentum correction).
        - Sutskever et al., "On the importance of initialization and momentum in
          deep learning", ICML 2013 (the Nesterov form).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        momentum = _validation.check_float("momentum", momentum, minimum=0.0, maximum=1.0)
        if not isinstance(nesterov, bool):
            raise TypeError(f"Expected `nesterov` to be a bool. Received: nesterov={nesterov!r}")
        if kwargs.get("name") is None:
            kwargs["name"] = "pytorch_sgd"
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        """Applies one step of `gradient` to `variable` at `learning_rate` (the formula above)."""
        if self.momentum == 0:  # plain SGD: the two forms are the same update
            return super().update_step(gradient, variable, learning_rate)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        # The buffers `keras.optimizers.SGD.build` created, found the way Keras' own optimizers find them (the
        # lookup also resolves a distributed variable's per-replica copy).
        buffer = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum, variable.dtype)
        self.assign(buffer, ops.add(ops.multiply(buffer, momentum), gradient))
        direction = ops.add(gradient, ops.multiply(buffer, momentum)) if self.nesterov else buffer
        self.assign_sub(variable, ops.multiply(direction, learning_rate))
