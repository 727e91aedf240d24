"""GradTailModel: distribution, XLA, saving, configuration and argument errors."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.gradtail import GradTailModel
from keras_longtail.gradtail import GradTailSigmoid
from keras_longtail.gradtail import RandomPatches
from tests import helpers

RNG = np.random.default_rng(3)
X = RNG.normal(size=(48, 4)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0.8).astype(np.int32) + (X[:, 2] > 1.0).astype(np.int32)
SW = RNG.uniform(0.5, 2.0, size=48).astype(np.float32)
INITIAL = [RNG.normal(scale=0.7, size=(4, 5)).astype(np.float32), np.zeros(5, np.float32),
           RNG.normal(scale=0.7, size=(5, 3)).astype(np.float32), np.zeros(3, np.float32)]


def _model(gradient_path="auto", **kwargs):
    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")(inputs)
    logits = keras.layers.Dense(3, name="classifier")(hidden)
    kwargs.setdefault("activation", GradTailSigmoid(max_weight=5.0, sharpness=3.0))
    kwargs.setdefault("decay", 0.8)
    model = GradTailModel(inputs, logits, gradient_path=gradient_path, **kwargs)
    for variable, value in zip(model.trainable_weights, INITIAL):
        variable.assign(value)
    return model


def _fit(gradient_path, jit_compile=False, initial_scale=None):
    model = _model(gradient_path)
    optimizer = keras.optimizers.SGD(0.3, momentum=0.5)
    if initial_scale is not None:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=initial_scale)
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile)
    history = model.fit(X, Y, sample_weight=SW, batch_size=16, epochs=2, shuffle=False, verbose=0)
    state = [v.numpy() for v in model.gradtail_mean_gradient] + [model.gradtail_sigma.numpy()]
    return [v.numpy() for v in model.trainable_weights] + state, history.history


@pytest.mark.parametrize("gradient_path", ["dense", "analytic", "jacobian"])
@pytest.mark.slow
def test_mirrored_strategy_and_jit_equal_one_device(gradient_path):
    expected, logs = _fit(gradient_path)
    assert logs["gradtail_sigma"][-1] > 0 and logs["gradtail_mean_weight"][-1] > 1.0

    def mirrored(strategy):
        return _fit(gradient_path)

    got_mirrored, logs_mirrored = helpers.run_mirrored(mirrored)
    got_jit, logs_jit = _fit(gradient_path, jit_compile=True)
    for name, got, got_logs in (("mirrored", got_mirrored, logs_mirrored), ("jit", got_jit, logs_jit)):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)
        for key in ("loss", "gradtail_mean_weight", "gradtail_upweighted", "gradtail_sigma"):
            np.testing.assert_allclose(got_logs[key], logs[key], rtol=1e-5, err_msg=f"{name} {key}")


def test_save_and_reload_keeps_state_and_configuration(tmp_path):
    model = _model(gradient_layers=["classifier"], pivot=-0.2)
    model.compile(keras.optimizers.SGD(0.3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)
    reloaded = helpers.assert_keras_save_load(model, X[:5], tmp_path)
    assert isinstance(reloaded, GradTailModel)
    assert reloaded.pivot == -0.2 and reloaded.activation.max_weight == 5.0
    assert [v.path for v in reloaded.gradtail_variables] == ["classifier/kernel", "classifier/bias"]
    for a, b in zip(model.gradtail_mean_gradient + [model.gradtail_sigma, model.gradtail_step],
                    reloaded.gradtail_mean_gradient + [reloaded.gradtail_sigma, reloaded.gradtail_step]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert float(reloaded.gradtail_step.numpy()) == 3.0
    # The reloaded model continues exactly as the original does.
    for m in (model, reloaded):
        m.train_on_batch(X[:16], Y[:16])
    np.testing.assert_allclose(reloaded.gradtail_sigma.numpy(), model.gradtail_sigma.numpy(), rtol=1e-6)
    for a, b in zip(model.trainable_weights, reloaded.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def test_config_round_trip():
    model = _model(gradient_variables=["hidden/bias"], gradient_layers=["classifier"], pivot=0.5,
                   patches=None)
    config = model.get_config()
    assert config["gradient_layers"] == ["classifier"] and config["gradient_variables"] == ["hidden/bias"]
    revived = helpers.assert_config_round_trip(model)
    assert [v.path for v in revived.gradtail_variables] == ["classifier/kernel", "classifier/bias", "hidden/bias"]


def test_from_model_wraps_and_shares_layers():
    inputs = keras.Input((4,))
    logits = keras.layers.Dense(3, name="classifier")(keras.layers.Dense(5, name="hidden")(inputs))
    base = keras.Model(inputs, logits, name="base")
    model = GradTailModel.from_model(base, gradient_layers=["classifier"])
    assert model.name == "base" and model.get_layer("classifier") is base.get_layer("classifier")
    np.testing.assert_allclose(model(X[:3]).numpy(), base(X[:3]).numpy())


def test_default_selection_is_last_two_kernel_layers():
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    logits = keras.layers.Dense(3, name="classifier")(x)
    model = GradTailModel(inputs, logits)
    assert [v.path for v in model.gradtail_variables] == ["conv/kernel", "conv/bias", "classifier/kernel",
                                                         "classifier/bias"]
    assert model.gradtail_resolved_path == "analytic"  # conv → BN is handled exactly
    with pytest.raises(ValueError, match="gradient_path='dense'.*batch normalization|keras.layers.Dense"):
        GradTailModel(inputs, logits, gradient_path="dense")
    assert GradTailModel(inputs, logits, gradient_layers=["classifier"]).gradtail_resolved_path == "dense"
    assert GradTailModel(inputs, logits, gradient_path="jacobian").gradtail_resolved_path == "jacobian"


def test_resnet32_default_selection_takes_the_analytic_path():
    from keras_longtail.models import resnet32

    model = GradTailModel.from_model(resnet32(10, input_shape=(8, 8, 3)))
    assert [v.path for v in model.gradtail_variables] == ["stage3_block5_conv2/kernel", "classifier/kernel",
                                                         "classifier/bias"]
    assert model.gradtail_resolved_path == "analytic"
    assert GradTailModel.from_model(resnet32(10, input_shape=(8, 8, 3)),
                                    gradient_layers=["classifier"]).gradtail_resolved_path == "dense"


def _conv_sync_fit(jit_compile=False):
    """Conv → synchronized BN → ReLU → pool → Dense, analytic path: the BN statistics span the replicas."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(synchronized=True, name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    logits = keras.layers.Dense(3, name="classifier")(x)
    model = GradTailModel(inputs, logits, gradient_path="analytic", decay=0.8,
                          activation=GradTailSigmoid(max_weight=5.0, sharpness=3.0))
    model.compile(keras.optimizers.SGD(0.3, momentum=0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    images = np.random.default_rng(5).normal(loc=0.5, size=(48, 5, 5, 2)).astype(np.float32)
    history = model.fit(images, Y, sample_weight=SW, batch_size=16, epochs=2, shuffle=False, verbose=0)
    state = [v.numpy() for v in model.gradtail_mean_gradient] + [model.gradtail_sigma.numpy()]
    return [v.numpy() for v in model.weights] + state, history.history


@pytest.mark.slow
def test_analytic_path_with_synchronized_batch_norm_mirrored_and_jit_equal_one_device():
    expected, logs = _conv_sync_fit()
    assert logs["gradtail_mean_weight"][-1] > 1.0
    got_mirrored, logs_mirrored = helpers.run_mirrored(lambda strategy: _conv_sync_fit())
    got_jit, logs_jit = _conv_sync_fit(jit_compile=True)
    for name, got, got_logs in (("mirrored", got_mirrored, logs_mirrored), ("jit", got_jit, logs_jit)):
        for want, have in zip(expected, got):
            np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=name)
        for key in ("loss", "gradtail_mean_weight", "gradtail_upweighted", "gradtail_sigma"):
            np.testing.assert_allclose(got_logs[key], logs[key], rtol=1e-5, err_msg=f"{name} {key}")


def test_analytic_path_refuses_what_it_cannot_do_exactly():
    def conv_model(conv=None, after=None, **kwargs):
        inputs = keras.Input((6, 6, 2))
        x = (conv or keras.layers.Conv2D(2, 3, name="conv"))(inputs)
        for layer in after or []:
            x = layer(x)
        logits = keras.layers.Dense(3, name="classifier")(keras.layers.GlobalAveragePooling2D()(x))
        return inputs, logits

    cases = [
        (conv_model(keras.layers.Conv2D(2, 3, activation="relu", name="conv")), "has an activation"),
        (conv_model(keras.layers.DepthwiseConv2D(3, name="conv")), "DepthwiseConv2D"),
        (conv_model(after=[keras.layers.ReLU(), keras.layers.BatchNormalization(name="late_bn")]),
         "late_bn.*couples the examples"),
        (conv_model(after=[keras.layers.BatchNormalization(renorm=True, name="bn")]), "renorm"),
    ]
    for (inputs, logits), message in cases:
        with pytest.raises(ValueError, match=f"gradient_path='analytic' cannot be used: .*{message}"):
            GradTailModel(inputs, logits, gradient_path="analytic")
        assert GradTailModel(inputs, logits).gradtail_resolved_path == "jacobian"
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.Add()([keras.layers.BatchNormalization(name="bn")(x), x])  # BN and a skip from the conv
    logits = keras.layers.Dense(3, name="classifier")(keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="feeds batch normalization .'bn'. and other layers"):
        GradTailModel(inputs, logits, gradient_path="analytic")
    with pytest.raises(ValueError, match="gradient_path='analytic' cannot be used: patches"):
        _model("analytic", patches=RandomPatches())


def test_bad_input():
    with pytest.raises(ValueError, match="pivot"):
        _model(pivot=math.inf)
    with pytest.raises(ValueError, match="pivot"):
        _model(pivot=float("nan"))
    for decay in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="decay"):
            _model(decay=decay)
    with pytest.raises(ValueError, match="max_weight"):
        GradTailSigmoid(max_weight=0.5)
    with pytest.raises(TypeError, match="activation"):
        _model(activation="sigmoid")
    for bad in ("forward", "Analytic", None):
        with pytest.raises(ValueError, match=r"gradient_path.*'analytic', 'auto', 'bias', 'dense', 'jacobian'.*Received"):
            _model(gradient_path=bad)
    with pytest.raises(ValueError, match="gradient_layers.*trainable weights"):
        _empty_selection()
    with pytest.raises(ValueError, match="gradient_layers"):
        _model(gradient_layers=["missing"])
    inputs = keras.Input((4,))
    frozen = keras.layers.Dense(5, name="frozen")
    logits = keras.layers.Dense(3, name="classifier")(frozen(inputs))
    frozen.trainable = False
    with pytest.raises(ValueError, match="trainable.*frozen/kernel"):
        GradTailModel(inputs, logits, gradient_variables=[frozen.kernel])
    with pytest.raises(ValueError, match="gradient_layers.*trainable weights"):
        GradTailModel(inputs, logits, gradient_layers=["frozen"])
    with pytest.raises(ValueError, match="gradient_variables"):
        GradTailModel(inputs, logits, gradient_variables=["classifier/gamma"])


def _empty_selection():
    # Only layers without weights selected: nothing to compare gradients on.
    inputs = keras.Input((4,))
    logits = keras.layers.Dense(3, name="classifier")(keras.layers.Activation("relu", name="act")(inputs))
    GradTailModel(inputs, logits, gradient_layers=["act"])


@pytest.fixture
def dtype_policy():
    """Sets Keras' global dtype policy inside the test (`dtype_policy(name)`); always restores float32."""
    try:
        yield keras.config.set_dtype_policy
    finally:
        keras.config.set_dtype_policy("float32")


# Max abs difference to float32 of the weights and state (mean gradient, sigma) after 6 steps of SGD 0.3 with
# momentum; measured (December 2026) 2.3e-2 (bfloat16, all paths) and 7.6e-4-9.3e-4 (float16).
MIXED_TOLERANCE = {"mixed_bfloat16": 5e-2, "mixed_float16": 3e-3}


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("gradient_path", ["dense", pytest.param("analytic", marks=pytest.mark.slow),
                                           pytest.param("jacobian", marks=pytest.mark.slow)])
def test_mixed_precision_stays_close_to_float32(gradient_path, policy, dtype_policy):
    # Issue 19.2: every gradient path under 16-bit compute. The per-example gradient statistics are taken in
    # float32 (the squared norms of float16 gradients of a loss scaled by 2^15 would overflow), the state stays
    # float32, and the run stays close to the float32 one.
    expected, _ = _fit(gradient_path)
    dtype_policy(policy)
    # Keras' default loss scale (2^15) overflows the float16 gradients of one of these 6 steps (lr 0.3, the
    # logits grow), and LossScaleOptimizer skips it: a loss-scaler warm-up, not GradTail's numerics. A scale
    # of 2^8 skips nothing, so the runs compare step for step (the contract suite runs Keras' default).
    got, logs = _fit(gradient_path, initial_scale=2.0 ** 8 if policy == "mixed_float16" else None)
    assert all(np.isfinite(v).all() for v in logs.values())
    for want, have in zip(expected, got):
        assert have.dtype == np.float32
        np.testing.assert_allclose(have, want, rtol=0, atol=MIXED_TOLERANCE[policy])
