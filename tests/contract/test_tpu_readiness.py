"""TPU readiness of every method's train step (issue 19.5), checked without a TPU.

A TPU runs `fit` as XLA programs of fully static shape, in `mixed_bfloat16`, several steps per host call. Each
case below fits a tiny model in that configuration on the CPU (`TPU_LIKE`: `jit_compile=True`,
`steps_per_execution=4`, a `tf.data` input batched with `drop_remainder=True`, the `mixed_bfloat16` policy) and
checks what a TPU needs, not only that it runs:

(a) `test_train_step_lowers_to_static_xla`: the step Keras compiles (`strategy.run(model.train_step)` under
    `tf.function(jit_compile=True)`, as Keras' TensorFlow trainer builds it) is lowered to HLO for the dataset's
    element spec; the HLO has no dynamic dimension (`?`, or `<=` bounds from data-dependent shapes such as
    `tf.where` / `boolean_mask`), no host round trip (send/recv, infeed/outfeed, host callbacks), no float64
    (TPUs have none; GBG's solve is checked in its TPU branch by `test_gbg_solve_lowers_in_float32_on_tpu`),
    runs its compute in bfloat16, and takes every weight and state variable as float32. A step that Keras
    could not lower raises here (e.g. `tf.numpy_function`: no XLA kernel). `test_the_static_shape_check_can_fail`
    shows the check catching a data-dependent shape.
(b) `test_tpu_like_fit_equals_reference`: the TPU-like fit ends where a plain fit (`jit_compile=False`,
    `steps_per_execution=1`) on the same batches ends: the logged losses, every weight and the method state
    (GALA θ/φ, GradTail σ and mean gradient, GBG's stored α, ...). In float32 to 1e-5 (XLA only reorders float
    sums; anything kept in Python between steps would differ by whole steps), and in `mixed_bfloat16`
    within a bfloat16 tolerance (`BF16_TOLERANCE`).
(c) in (a): under `mixed_bfloat16` every variable of the model, of its loss and of its optimizer, and every piece
    of method state, stays float32 (integer ids excepted).

What this cannot show: TPU-only compilation limits (memory layout, TPU ops coverage beyond what the XLA CPU
bridge accepts) and `TPUStrategy`'s own replication; see docs/tpu.md.
"""

import contextlib
import functools
import re
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_longtail import models
from keras_longtail.gbg import ClassGrouping
from keras_longtail.training import DualPhaseTraining
from keras_longtail.training import GBGModel
from keras_longtail.training import GradTailModel
from keras_longtail.training import GradTailSigmoid
from keras_longtail.training import RandomPatches
from tests.contract import cases

# XLA compiles of every method (about a minute): run by the README's test command and CI, not by plain `pytest`;
# tests/contract/test_contract.py keeps `jit_compile=True` in the fast suite.
pytestmark = pytest.mark.slow

BATCH = 16
STEPS = 10  # two full executions of 4 steps and a last one of 2
STEPS_PER_EXECUTION = 4
TPU_LIKE = {"jit_compile": True, "steps_per_execution": STEPS_PER_EXECUTION}
REFERENCE = {"jit_compile": False, "steps_per_execution": 1}
# Max abs difference of weights and state, TPU-like against the reference fit. float32: XLA reorders sums only
# (measured at most 1.9e-6, GALA's accumulated statistics).
# mixed_bfloat16: XLA fuses ops and keeps some intermediates in float32 where the unfused run rounds each op's
# output to bfloat16 (8 significant bits, relative rounding 2^-9 = 2e-3); after 10 SGD steps the differences
# measured (December 2026) were at most 3.1e-3 (GALALoss's statistics) under the default bound, and are given
# in `BF16_TOLERANCE` for the cases that need their own bound (about 3x the measured one).
FLOAT32_TOLERANCE = 1e-5
BF16_DEFAULT_TOLERANCE = 1e-2
# GBG's solve in float32 (its TPU branch) against float64, both TPU-like in mixed_bfloat16: measured 2.1e-7.
GBG_FLOAT32_SOLVE_TOLERANCE = 1e-5
BF16_TOLERANCE = {
    # measured 6.8e-3 (mixed_bfloat16 against float32, not compiled: 5.5e-4; the first step's update errs by the
    # same 2.9 % compiled or not, so this is bfloat16 rounding amplified over the steps, not lost precision)
    "dual_phase_two": 2e-2,
}


# ----------------------------------------------------------------------------------------------------- the cases
def _classifier_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * STEPS + 5, cases.NUM_FEATURES)).astype("float32")  # 5 dropped by drop_remainder
    y = (np.arange(len(x)) % cases.NUM_CLASSES).astype("int32")
    return x, y


def _contract(name, epochs=1):
    """A case of the contract registry (tests/contract/cases.py) on the classifier data.

    `name` is the registry's `namespace.Class`; the class name alone finds it too, should the namespace change.
    """
    def build():
        key = name if name in cases.CASES else min(k for k in cases.CASES if k.endswith("." + name.split(".")[-1]))
        case = cases.CASES[key]()
        case.setdefault("data", _classifier_data)
        case.setdefault("epochs", epochs)
        return case

    return build


def _gradtail_two_layers():
    # The paper's "last two layers": GradTail's exact path for a hidden layer (jacobian or forward mode).
    model = GradTailModel.from_model(cases.classifier(), gradient_layers=["features", "classifier"])
    return {"model": model, "compile": {"loss": cases.ce()}, "data": _classifier_data,
            "state": lambda model: [v.numpy() for v in model.gradtail_mean_gradient] + [model.gradtail_sigma.numpy()]}


def _gradtail_dense_patches():
    # Dense regression (the depth configuration in small): per-pixel loss with a ground-truth mask as
    # sample_weight, pseudo-examples = random patches, θ on two conv biases (the "bias" gradient path).
    inputs = keras.Input((10, 12, 2))
    hidden = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="decoder_up_1")(inputs)
    depth = keras.layers.Conv2D(1, 1, name="decoder_up_2")(hidden)
    model = GradTailModel(inputs, depth, gradient_variables=["decoder_up_1/bias", "decoder_up_2/bias"],
                          patches=RandomPatches(num_patches=3, min_size=3, max_size=6, seed=4),
                          activation=GradTailSigmoid(max_weight=15.0), pivot=-0.5, decay=0.9)

    def data():
        rng = np.random.default_rng(11)
        images = rng.normal(size=(BATCH * STEPS + 5, 10, 12, 2)).astype("float32")
        depth_maps = (images[..., :1] * 2.0 + 1.0).astype("float32")
        mask = (rng.uniform(size=(len(images), 10, 12)) > 0.3).astype("float32")  # pixels with ground truth
        return images, depth_maps, mask

    return {"model": model, "data": data,
            "compile": {"loss": keras.losses.MeanAbsoluteError(reduction="mean_with_sample_weight")},
            "state": lambda model: [v.numpy() for v in model.gradtail_mean_gradient]
            + [model.gradtail_sigma.numpy(), model.gradtail_step.numpy()]}


def _gbg_amortized():
    # The default mode ("backbone") with the solve every 2 steps: a tf.cond on the optimizer's iterations
    # inside the compiled step, and the stored alpha carried between steps in a variable.
    model = GBGModel.from_model(cases.classifier(), ClassGrouping([0, 0, 1, 1]), solve_every=2)
    return {"model": model, "compile": {"loss": cases.ce()}, "data": _classifier_data,
            "state": lambda model: [model.gbg_alpha.numpy()]}


def _dual_phase_two():
    # Phase II of asynchronous dual-phase training: expanded cosine classifier, cross-entropy + IntraClassMarginLoss
    # (compute_loss) + λ·MemoryRetentiveLoss against the frozen phase-I features (add_loss).
    network = models.mlp(cases.NUM_CLASSES, (cases.NUM_FEATURES,), hidden_units=(16,))
    dual = DualPhaseTraining(network, cases.CLASS_COUNTS, threshold=2, memory_size=5)
    model = dual.build_phase_two_model()
    # Move the new backbone off the old one (at new = old the retentive distances are 0, where the norm has no
    # gradient and rounding would pick its direction).
    hidden = dual.model.get_layer("hidden1")
    hidden.kernel.assign(hidden.kernel.numpy() + 0.05)
    # SGD(0.01): with SGD(0.1) this phase-II problem is chaotic in bfloat16 (after 10 steps mixed_bfloat16 lands
    # 1.0 away from float32, compiled or not; the first step's update errs 2.9 % either way).
    return {"model": model, "compile": {"loss": cases.ce()}, "data": _classifier_data,
            "optimizer": lambda: keras.optimizers.SGD(0.01)}


CASES = {
    "gradtail_classifier": _contract("training.GradTailModel"),  # the analytic Dense path
    "gradtail_two_layers": _gradtail_two_layers,
    "gradtail_dense_patches": _gradtail_dense_patches,
    "gala_loss": _contract("losses.GALALoss"),  # with GALAAccumulator
    "gala_statistics": _contract("layers.GALAStatistics"),  # the statistics in a layer, with GALAAccumulator
    "wb_per_class_max_norm": _contract("constraints.PerClassMaxNorm"),
    "wb_projection_callback": _contract("callbacks.PerClassMaxNormProjection", epochs=2),
    "gbg_model_exact": _contract("training.GBGModel"),
    "gbg_model_representation": _contract("gbg.ClassGrouping"),
    "gbg_model_amortized": _gbg_amortized,
    "gbg_optimizer": _contract("optimizers.GBGOptimizer"),
    "dual_phase_two": _dual_phase_two,
    "shot_accuracy_metric": _contract("metrics.ShotAccuracy"),  # the Many / Medium / Few metric of docs/tpu.md
}
GBG_CASES = [name for name in CASES if name.startswith("gbg_")]
# Cases that cannot lower with static shapes or do not match the reference: name -> reason (xfail, strict).
KNOWN_FAILURES = {}


# ------------------------------------------------------------------------------------------------------ helpers
def _dataset(arrays):
    return tf.data.Dataset.from_tensor_slices(tuple(arrays)).batch(BATCH, drop_remainder=True)


def lower_train_step(model, element_spec):
    """HLO text of `model.train_step` compiled as Keras' TensorFlow trainer compiles one step under jit_compile.

    Keras wraps `strategy.run(train_step)` in `tf.function(jit_compile=True)` and feeds it the dataset's
    elements; here the same function is lowered for `element_spec` (flattened: the compiler IR takes tensors).
    """
    def one_step(*flat):
        data = tf.nest.pack_sequence_as(element_spec, flat)
        return model.distribute_strategy.run(model.train_step, args=(data,))

    step = tf.function(one_step, jit_compile=True)
    return step.experimental_get_compiler_ir(*tf.nest.flatten(element_spec))(stage="hlo")


_DYNAMIC_SHAPE = re.compile(r"\b[a-z]+\d*\[[^\]]*(?:\?|<=)[^\]]*\]")  # f32[<=16,8], s64[?] ...
_HOST_OPS = re.compile(r"=\s*\S+\s+(send|recv|send-done|recv-done|infeed|outfeed)\(")
# XLA custom calls every backend (TPU included) expands itself (QR, from the GBG solver's least squares).
_EXPANDED_CUSTOM_CALLS = {"Qr", "ProductOfElementaryHouseholderReflectors"}


def hlo_problems(hlo):
    """What in an HLO module would stop a TPU from running it with static shapes: a list of strings."""
    problems = [f"dynamic shape: {line.strip()[:160]}" for line in hlo.splitlines() if _DYNAMIC_SHAPE.search(line)]
    problems += [f"host transfer: {line.strip()[:160]}" for line in hlo.splitlines() if _HOST_OPS.search(line)]
    targets = set(re.findall(r'custom_call_target="([^"]+)"', hlo)) - _EXPANDED_CUSTOM_CALLS
    problems += [f"custom call: {target}" for target in sorted(targets)]
    return problems


def _entry_parameters(hlo):
    """(dtype, shape) of every parameter of the ENTRY computation (the inputs, weights and state variables)."""
    entry = hlo[hlo.index("\nENTRY "):]
    entry = entry[:entry.index("\n}")]
    return re.findall(r"=\s*([a-z]+\d*)\[([^\]]*)\]\S*\s+parameter\(\d+\)", entry)


def _variables(model):
    variables = list(model.variables) + list(model.optimizer.variables)
    for loss in keras.tree.flatten(model.loss):
        variables += list(getattr(loss, "variables", []))
    return variables


def _as_if_on_tpu():
    """Makes `isinstance(strategy, tf.distribute.TPUStrategy)` true for the default strategy while tracing.

    The library's only TPU branch is GBG's solver dtype (float32 under `TPUStrategy`, TPUs have no float64);
    Keras and TensorFlow's own code do not look at the public `tf.distribute.TPUStrategy` name.
    """
    default = type(tf.distribute.get_strategy())
    stack = contextlib.ExitStack()
    stack.enter_context(mock.patch.object(tf.distribute, "TPUStrategy", default))
    stack.enter_context(mock.patch.object(tf.distribute.experimental, "TPUStrategy", default))
    return stack


@functools.lru_cache(maxsize=None)
def _run(name, policy, tpu_like, tpu_branch=False):
    """Fits case `name` under `policy` (TPU-like or reference); the numbers, dtypes and (TPU-like) the HLO.

    With `tpu_branch`, the whole fit and the lowering take the library's `TPUStrategy` branch (`_as_if_on_tpu`).
    """
    keras.config.set_dtype_policy(policy)
    try:
        with _as_if_on_tpu() if tpu_branch else contextlib.nullcontext():
            keras.utils.set_random_seed(0)
            case = CASES[name]()
            model = case["model"]
            optimizer = case["optimizer"]() if "optimizer" in case else keras.optimizers.SGD(0.1)
            model.compile(optimizer, **case["compile"], **(TPU_LIKE if tpu_like else REFERENCE))
            dataset = _dataset(case["data"]())
            history = model.fit(dataset, epochs=case.get("epochs", 1), shuffle=False, verbose=0,
                                callbacks=case.get("callbacks"))
            state = [np.asarray(value) for value in case["state"](model)] if "state" in case else []
            result = {
                "history": history.history,
                "values": [np.asarray(w) for w in model.get_weights()] + state,
                "state_dtypes": [value.dtype for value in state],
                "variable_dtypes": {v.path: v.dtype for v in _variables(model)},
                "iterations": int(model.optimizer.iterations),
                # what Keras actually ran with (it turns jit off, with a warning, for a model that does not
                # support it)
                "compiled_with": (model.jit_compile, model.steps_per_execution),
            }
            if tpu_like:
                result["hlo"] = lower_train_step(model, dataset.element_spec)
            return result
    finally:
        keras.config.set_dtype_policy("float32")


def _params():
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])
                         if name in KNOWN_FAILURES else (), id=name) for name in CASES]


# -------------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", _params())
def test_train_step_lowers_to_static_xla(name):
    # GBG's step as a TPU compiles it: with the float32 solve of its TPUStrategy branch (see the last test).
    run = _run(name, "mixed_bfloat16", True, tpu_branch=name in GBG_CASES)
    assert run["compiled_with"] == (True, STEPS_PER_EXECUTION)
    hlo = run["hlo"]
    assert hlo_problems(hlo) == []
    assert "f64[" not in hlo, "float64 in the step (TPUs have no float64)"
    assert "bf16[" in hlo, "the bfloat16 policy did not reach the compiled step"
    parameters = _entry_parameters(hlo)
    assert parameters and all(dtype in ("f32", "s32", "s64", "pred", "u8") for dtype, _ in parameters), parameters
    assert any(shape.startswith(f"{BATCH},") or shape == str(BATCH) for _, shape in parameters), \
        "the batch does not enter the step with its static size"
    # (c) the method state and every variable stay float32 under mixed_bfloat16
    assert all(dtype in (np.float32, np.int32, np.int64) for dtype in run["state_dtypes"]), run["state_dtypes"]
    wide = {path: dtype for path, dtype in run["variable_dtypes"].items()
            if dtype not in ("float32", "int32", "int64")}
    assert not wide, f"variables not float32 under mixed_bfloat16: {wide}"


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("name", _params())
def test_tpu_like_fit_equals_reference(name, policy):
    expected, got = _run(name, policy, False), _run(name, policy, True)
    assert got["iterations"] == expected["iterations"]
    tolerance = FLOAT32_TOLERANCE if policy == "float32" else BF16_TOLERANCE.get(name, BF16_DEFAULT_TOLERANCE)
    assert set(got["history"]) == set(expected["history"])
    for key, values in expected["history"].items():
        np.testing.assert_allclose(got["history"][key], values, rtol=tolerance, atol=tolerance, err_msg=key)
    assert len(got["values"]) == len(expected["values"])
    for index, (want, have) in enumerate(zip(expected["values"], got["values"])):
        # rtol: accumulated statistics (GALA's θ/φ) grow to tens, where a float32 ulp is ~4e-6
        np.testing.assert_allclose(have, want, rtol=FLOAT32_TOLERANCE, atol=tolerance, err_msg=f"{name}: value {index}")


def test_the_static_shape_check_can_fail():
    # A loss over the examples selected by a mask: `tf.boolean_mask` has a data-dependent shape, which XLA
    # can only bound (`f32[<=16]`); a TPU needs it rewritten with static shapes (e.g. a 0/1 weight).
    class Masked(keras.Model):
        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                per_example = keras.losses.sparse_categorical_crossentropy(y, self(x), from_logits=True)
                loss = tf.reduce_mean(tf.boolean_mask(per_example, y > 0))
            self.optimizer.apply(tape.gradient(loss, self.trainable_weights), self.trainable_weights)
            return {"loss": loss}

    inputs = keras.Input((cases.NUM_FEATURES,))
    model = Masked(inputs, keras.layers.Dense(cases.NUM_CLASSES)(inputs))
    model.compile(keras.optimizers.SGD(0.1))
    model.optimizer.build(model.trainable_weights)
    dataset = _dataset(_classifier_data())
    problems = hlo_problems(lower_train_step(model, dataset.element_spec))
    assert problems and all(problem.startswith("dynamic shape") for problem in problems), problems
    assert any("<=16]" in problem for problem in problems), problems
    # A dataset batched without drop_remainder has no static batch size: the step cannot be lowered at all.
    unbatched = tf.data.Dataset.from_tensor_slices(_classifier_data()).batch(BATCH)
    with pytest.raises(ValueError, match="static input shape"):
        lower_train_step(model, unbatched.element_spec)


def test_random_patches_are_the_same_compiled_or_not():
    # GradTail's dense pseudo-examples: the patches of a step must not depend on whether the step is compiled
    # (TPU) or not. They did: `tf.random.stateless_uniform` draws other numbers under XLA than in TensorFlow's
    # kernel, so a compiled run trained on other patches than the same seed uncompiled (and the dense case of
    # test_tpu_like_fit_equals_reference differed by 2e-2 in float32).
    patches = RandomPatches(num_patches=6, min_size=2, max_size=9, seed=3)
    compiled = tf.function(lambda step: patches.masks(10, 12, step), jit_compile=True)
    for step in (0, 1, 2, 17, 123456):
        np.testing.assert_array_equal(compiled(tf.constant(step, tf.float32)).numpy(),
                                      patches.masks(10, 12, tf.constant(step, tf.float32)).numpy(), err_msg=step)


@pytest.mark.parametrize("name", GBG_CASES)
def test_gbg_solve_lowers_in_float32_on_tpu(name):
    # Under TPUStrategy GBG solves for alpha in float32 (elsewhere float64, which the float64-free check of
    # test_train_step_lowers_to_static_xla cannot accept on a TPU). Take that branch on the CPU: the step then
    # holds no float64, and training ends close to the float64 solve (alpha is a small QP's solution).
    on_cpu = _run(name, "mixed_bfloat16", True)
    on_tpu = _run(name, "mixed_bfloat16", True, tpu_branch=True)
    assert "f64[" in on_cpu["hlo"], "the float64 solve is gone on the CPU: this test checks nothing any more"
    assert "f64[" not in on_tpu["hlo"]
    assert hlo_problems(on_tpu["hlo"]) == []
    for index, (want, have) in enumerate(zip(on_cpu["values"], on_tpu["values"])):
        np.testing.assert_allclose(have, want, rtol=0, atol=GBG_FLOAT32_SOLVE_TOLERANCE, err_msg=f"value {index}")
