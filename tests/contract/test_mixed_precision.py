"""Every `fit` contract case under Keras' mixed precision policies (issue 19.2).

For each exported class in `cases.CASES` and each of `mixed_bfloat16` and `mixed_float16` (with Keras'
`LossScaleOptimizer`, which `compile` applies for mixed_float16): three steps of `fit` on one device give finite
logs; every weight and every piece of method state stays float32 (16-bit compute, float32 variables); the
losses are computed in float32; and the weights and state stay within a per-method tolerance of the float32
run (`TOLERANCES`; the default when not listed). The global policy is set in the `dtype_policy` fixture and
always restored to "float32".
"""

import functools

import keras
import numpy as np
import pytest

from tests.contract import cases
from tests.contract.test_contract import STEPS
from tests.contract.test_contract import _train

POLICIES = ("mixed_bfloat16", "mixed_float16")
# Max abs difference of the weights and state after 3 SGD steps, 16-bit compute against float32. bfloat16 keeps
# 8 significant bits (relative rounding 2^-9 = 2e-3), float16 11 bits (2^-12 = 2.4e-4). Measured differences
# (December 2026) were at most 3.4e-3 (bfloat16) and 1.0e-4 (float16) for the weights; each bound is about 3x
# the measured one or more.
DEFAULT_TOLERANCE = {"mixed_bfloat16": 1e-2, "mixed_float16": 1e-3}
TOLERANCES = {
    # GBG (measured 1.2e-4-4.3e-4 / 1.5e-5): the solve runs in float64 on float32 gradients either way
    ("gbg.ClassGrouping", "mixed_bfloat16"): 2e-3,
    ("training.GBGModel", "mixed_bfloat16"): 2e-3,
    ("optimizers.GBGOptimizer", "mixed_bfloat16"): 2e-3,
    ("gbg.ClassGrouping", "mixed_float16"): 2e-4,
    ("training.GBGModel", "mixed_float16"): 2e-4,
    ("optimizers.GBGOptimizer", "mixed_float16"): 2e-4,
    # GradTail (measured 1.3e-3 / 4.1e-5; the state includes the running mean gradient and sigma)
    ("training.GradTailModel", "mixed_bfloat16"): 5e-3,
    ("training.GradTailSigmoid", "mixed_bfloat16"): 5e-3,
    ("training.GradTailWeightLogger", "mixed_bfloat16"): 5e-3,
    ("training.GradTailModel", "mixed_float16"): 2e-4,
    ("training.GradTailSigmoid", "mixed_float16"): 2e-4,
    ("training.GradTailWeightLogger", "mixed_float16"): 2e-4,
    # dual-phase phase II pieces (measured 3.4e-3, 2.4e-3, 2.0e-3 / 2.5e-5)
    ("losses.IntraClassMarginLoss", "mixed_bfloat16"): 1e-2,
    ("layers.CosineClassifier", "mixed_bfloat16"): 1e-2,
    ("losses.MemoryRetentiveLoss", "mixed_bfloat16"): 1e-2,
    # The state is the binned mean relative error of 16-bit depth predictions (up to 90 m: bfloat16 spacing
    # 0.5 m, float16 0.06 m); measured 1.6e-2 / 1.9e-2.
    ("metrics.BinnedMeanRelativeError", "mixed_bfloat16"): 5e-2,
    ("metrics.BinnedMeanRelativeError", "mixed_float16"): 5e-2,
    # The same depth model's weights under the L1 loss, whose gradient is the sign of (prediction - target): where
    # bfloat16 rounding of a depth (spacing 0.5 m at 64-90 m) crosses the target, that pixel's gradient flips, so the
    # difference depends on the CPU's bfloat16 kernels: within 1e-2 on the AVX-512 BF16 machine, 2.3e-2 on an AMD EPYC
    # with AVX2 only (December 3, 2026).
    ("losses.MaskedL1", "mixed_bfloat16"): 5e-2,
}
# Relative tolerances on top, for state that accumulates: the metric's running sums (34 and 180 after three batches)
# are relative errors of bfloat16 depths (each rounded by up to 2^-9 = 2e-3) from weights that moved apart as the
# MaskedL1 note above says; measured 6.5e-3 and 9.4e-4 on an AVX2-only AMD EPYC (within the absolute 5e-2 on the
# AVX-512 BF16 machine).
RELATIVE_TOLERANCES = {("metrics.BinnedMeanRelativeError", "mixed_bfloat16"): 2e-2}
# Keras' LossScaleOptimizer starts at a scale of 2^15; where the first step's 16-bit gradients overflow at that
# scale it skips the step and halves the scale (its documented behaviour). Those cases are compared with the
# float32 run on the batches the loss scaler applied: case -> steps skipped.
LOSS_SCALE_SKIPS = {"layers.CosineClassifier": 1, "losses.MemoryRetentiveLoss": 1}
# Cases that fail under a policy: (case, policy) -> reason; run as xfail(strict=True).
KNOWN_FAILURES = {}


@pytest.fixture
def dtype_policy():
    """Sets Keras' global dtype policy inside the test (`dtype_policy(name)`); always restores float32."""
    try:
        yield keras.config.set_dtype_policy
    finally:
        keras.config.set_dtype_policy("float32")


@functools.lru_cache(maxsize=None)
def _float32_run(name, first_batch=0):
    assert keras.config.dtype_policy().name == "float32"
    _, _, history, values = _train(name, first_batch=first_batch)
    return history, values


def _params():
    params = []
    for name in sorted(cases.CASES):
        for policy in POLICIES:
            marks = ()
            if (name, policy) in KNOWN_FAILURES:
                marks = pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[(name, policy)])
            params.append(pytest.param(name, policy, marks=marks, id=f"{name}-{policy}"))
    return params


@pytest.mark.parametrize("name, policy", _params())
def test_mixed_precision_close_to_float32(name, policy, dtype_policy):
    skipped = LOSS_SCALE_SKIPS.get(name, 0) if policy == "mixed_float16" else 0
    expected_history, expected = _float32_run(name, first_batch=skipped)
    dtype_policy(policy)
    case, model, history, values = _train(name)
    compute = policy.split("_")[1]
    assert any(layer.compute_dtype == compute for layer in model.layers), "the policy did not reach the model"
    assert all(np.isfinite(v).all() for v in history.values()), history
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert int(model.optimizer.iterations) == STEPS - skipped, "steps the loss scaler skipped"
        assert float(model.optimizer.dynamic_scale) == 2.0 ** (15 - skipped)
    # weights and method state: float32 (or integer ids), never 16-bit
    for value in values:
        assert value.dtype in (np.float32, np.float64, np.int32, np.int64), value.dtype
    for variable in model.variables:
        assert variable.dtype in ("float32", "int32", "int64"), variable.path
    loss = case["compile"].get("loss")
    if isinstance(loss, keras.losses.Loss):
        assert loss.dtype == "float32"  # the loss is computed in float32 on the 16-bit predictions
    tolerance = TOLERANCES.get((name, policy), DEFAULT_TOLERANCE[policy])
    assert len(values) == len(expected)
    for want, have in zip(expected, values):
        np.testing.assert_allclose(have, want, rtol=RELATIVE_TOLERANCES.get((name, policy), 0), atol=tolerance,
                                   err_msg=f"{name} under {policy}")
    if not skipped:  # the logged loss averages the skipped batch too
        np.testing.assert_allclose(history["loss"], expected_history["loss"], rtol=5 * tolerance)
