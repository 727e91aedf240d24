import keras
import numpy as np
import pytest

from keras_longtail.optimizers import LinearWarmup
from keras_longtail.optimizers import PyTorchSGD
from tests import helpers

STEPS = 12


def _schedule():
    # A warm-up, then 0.1 until step 6 and a x0.01 drop after it: the LDAM-DRW schedule's shape in miniature.
    return LinearWarmup(keras.optimizers.schedules.PiecewiseConstantDecay([6], [0.1, 0.001]), warmup_steps=2,
                        peak=0.1)


def _rates(schedule):
    return [float(schedule(t)) for t in range(STEPS)]


def _gradients(seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(2,)).astype("float32")]
            for _ in range(STEPS)]


def _initial():
    rng = np.random.default_rng(1)
    return [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(2,)).astype("float32")]


def _run(optimizer, gradients):
    variables = [keras.Variable(w) for w in _initial()]
    for step_gradients in gradients:
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in step_gradients], variables)
    return [v.numpy() for v in variables]


def _torch_reference(rates, gradients, momentum, nesterov, weight_decay):
    """torch.optim.SGD's update (dampening 0) with Keras' decoupled weight decay, in numpy float64."""
    weights = [w.astype("float64") for w in _initial()]
    buffers = [np.zeros_like(w) for w in weights]
    for rate, step_gradients in zip(rates, gradients):
        for i, g in enumerate(step_gradients):
            weights[i] = weights[i] - rate * weight_decay * weights[i]
            if momentum == 0:
                direction = g
            else:
                buffers[i] = momentum * buffers[i] + g
                direction = g + momentum * buffers[i] if nesterov else buffers[i]
            weights[i] = weights[i] - rate * direction
    return weights


@pytest.mark.parametrize("momentum,nesterov,weight_decay", [(0.9, False, 0.0), (0.9, True, 0.0), (0.9, False, 5e-3),
                                                             (0.5, True, 1e-2), (0.0, False, 0.0)])
def test_equals_the_pytorch_update_through_a_learning_rate_drop(momentum, nesterov, weight_decay):
    gradients = _gradients()
    optimizer = PyTorchSGD(_schedule(), momentum=momentum, nesterov=nesterov, weight_decay=weight_decay or None)
    got = _run(optimizer, gradients)
    expected = _torch_reference(_rates(_schedule()), gradients, momentum, nesterov, weight_decay)
    for have, want in zip(got, expected):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    assert len(optimizer.momentums) == (0 if momentum == 0 else 2)


@pytest.mark.parametrize("nesterov", [False, True])
def test_equals_keras_sgd_at_a_constant_learning_rate(nesterov):
    gradients = _gradients(2)
    ours = _run(PyTorchSGD(0.05, momentum=0.9, nesterov=nesterov, weight_decay=1e-3), gradients)
    keras_sgd = _run(keras.optimizers.SGD(0.05, momentum=0.9, nesterov=nesterov, weight_decay=1e-3), gradients)
    for have, want in zip(ours, keras_sgd):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


def test_differs_from_keras_sgd_after_a_drop_by_the_old_rate_velocity():
    """After the drop Keras' velocity still holds steps of the old rate; the difference is that velocity's decay."""
    gradients = [[np.ones((3, 2), "float32"), np.ones((2,), "float32")]] * STEPS
    ours = _run(PyTorchSGD(_schedule(), momentum=0.9), gradients)
    keras_sgd = _run(keras.optimizers.SGD(_schedule(), momentum=0.9), gradients)
    rates = _rates(_schedule())
    # Constant gradients 1: Keras' velocity v_t = 0.9 v_{t-1} + rate_t, PyTorch's b_t = 0.9 b_{t-1} + 1, step rate_t b_t.
    velocity, buffer, keras_total, torch_total = 0.0, 0.0, 0.0, 0.0
    for rate in rates:
        velocity, buffer = 0.9 * velocity + rate, 0.9 * buffer + 1.0
        keras_total, torch_total = keras_total + velocity, torch_total + rate * buffer
    np.testing.assert_allclose(_initial()[1] - ours[1], torch_total, rtol=1e-5)
    np.testing.assert_allclose(_initial()[1] - keras_sgd[1], keras_total, rtol=1e-5)
    # Keras' extra distance is the old rate's velocity fading after the drop (~ 0.9 * 0.1 * 4.7 over 6 steps).
    assert keras_total - torch_total > 0.3


def test_serializes_and_resumes_from_a_saved_model(tmp_path):
    optimizer = PyTorchSGD(_schedule(), momentum=0.9, nesterov=True, weight_decay=5e-3)
    helpers.assert_config_round_trip(optimizer)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer, "mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)  # 4 steps: through the warm-up
    model.save(tmp_path / "m.keras")
    revived = keras.saving.load_model(tmp_path / "m.keras")
    assert type(revived.optimizer) is PyTorchSGD and revived.optimizer.nesterov
    for want, have in zip(model.optimizer.variables, revived.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(have), np.asarray(want))
    for m in (model, revived):  # 4 more steps each, across the drop: the buffers were restored
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for want, have in zip(model.get_weights(), revived.get_weights()):
        np.testing.assert_allclose(have, want, rtol=1e-6, atol=1e-7)


def test_bad_input():
    with pytest.raises(ValueError, match=r"Expected `momentum` <= 1.0. Received: momentum=1.5"):
        PyTorchSGD(0.1, momentum=1.5)
    with pytest.raises(ValueError, match=r"Expected `momentum` >= 0.0"):
        PyTorchSGD(0.1, momentum=-0.1)
    with pytest.raises(TypeError, match=r"Expected `momentum` to be a number"):
        PyTorchSGD(0.1, momentum="0.9")
    with pytest.raises(TypeError, match=r"Expected `nesterov` to be a bool. Received: nesterov=1"):
        PyTorchSGD(0.1, momentum=0.9, nesterov=1)
    assert PyTorchSGD(0.1, momentum=1).momentum == 1.0  # an integer momentum is fine (Keras' SGD refuses it)
