"""The parts written in `keras.ops` on Keras' JAX backend; the TensorFlow-only parts refuse it clearly.

One worker process (`jax_job.py`, KERAS_BACKEND=jax) fits every contract case from the weights the TensorFlow
run starts from, on the same batches. Here, on TensorFlow, each backend-neutral case must end with the same
weights, state and logged values, and the `.keras` file saved under JAX must load here and predict the same.
Each TensorFlow-only case must fail on JAX with the toolkit's error naming the TensorFlow backend, not deep
inside JAX. The same worker also runs the networks of `keras_longtail.models` (`cases.train_model`) and the
docstring examples of the keras.ops modules (`DOCTEST_MODULES`).
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.contract import cases
from tests.contract import jax_job

pytestmark = pytest.mark.slow  # one worker process compiling every case and network with XLA (3-10 min)

TIMEOUT_SECONDS = 900
ROOT = pathlib.Path(__file__).resolve().parents[2]

_GALA = "GALA's statistics are updated inside the loss, a side effect of TensorFlow's train step"
TENSORFLOW_ONLY = {
    "callbacks.BackupAndRestore": "its case trains GALA (" + _GALA + ")",
    "callbacks.GALAAccumulator": _GALA,
    "layers.GALAStatistics": _GALA,
    "losses.GALALoss": _GALA,
    "gbg.ClassGrouping": "GBG's per-group gradients are a TensorFlow train_step",
    "optimizers.GBGOptimizer": "GBG's per-group gradients are a TensorFlow train_step",
    "training.GBGModel": "GBG's per-group gradients are a TensorFlow train_step",
    "training.GradTailModel": "GradTail's per-example gradients are a TensorFlow train_step",
    "training.GradTailSigmoid": "GradTail's per-example gradients are a TensorFlow train_step",
    "training.GradTailWeightLogger": "GradTail's per-example gradients are a TensorFlow train_step",
}
NEUTRAL = sorted(set(cases.CASES) - set(TENSORFLOW_ONLY))
# Modules whose docstring examples must also run on JAX (the keras.ops parts; their examples use np.asarray, not
# TensorFlow's `.numpy()`).
DOCTEST_MODULES = [f"keras_longtail.{name}" for name in (
    "dual_phase.intra_class_margin_loss", "dual_phase.memory_retentive_loss", "gala.prediction_rebalancing",
    "layers.cosine_classifier", "layers.padded_random_crop", "losses.class_balanced_crossentropy",
    "losses.class_balanced_weights", "losses.masked_l1", "metrics.binned_mean_relative_error",
    "metrics.per_class_accuracy", "metrics.shot_accuracy", "optimizers.linear_warmup", "optimizers.pytorch_sgd",
    "weight_balancing.decoupled_weight_decay", "weight_balancing.per_class_max_norm",
    "weight_balancing.tau_normalize")]


@pytest.fixture(scope="module")
def jax_workdir(tmp_path_factory):
    if importlib.util.find_spec("jax") is None:  # not imported here: this process runs TensorFlow
        pytest.skip("the JAX backend needs jax (the `test` extra installs it)")
    workdir = tmp_path_factory.mktemp("jax_backend")
    for name in sorted(cases.CASES):
        np.savez(workdir / f"{name}.initial.npz", **{f"w{i}": w for i, w in enumerate(cases.initial_weights(name))})
    for name in cases.MODELS:
        np.savez(workdir / f"{name}.initial.npz",
                 **{f"w{i}": w for i, w in enumerate(cases.initial_model_weights(name))})
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    try:
        completed = subprocess.run([sys.executable, jax_job.__file__, str(workdir), *sorted(cases.CASES), *cases.MODELS,
                                    "--doctests", *DOCTEST_MODULES], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the JAX worker did not finish within {TIMEOUT_SECONDS} s:\n{str(error.output)[-3000:]}")
    if completed.returncode != 0:
        pytest.fail(f"the JAX worker failed (exit {completed.returncode}):\n{completed.stdout[-3000:]}")
    return workdir


def test_every_case_runs_on_jax_or_says_why():
    stale = sorted(set(TENSORFLOW_ONLY) - set(cases.CASES))
    assert not stale, f"TENSORFLOW_ONLY names cases that no longer exist: {stale}"
    assert NEUTRAL, "no backend-neutral case left"


def _result(workdir, name):
    error = workdir / f"{name}.error.txt"
    if error.exists():
        pytest.fail(f"{name} failed on the JAX backend:\n{error.read_text()[-3000:]}")
    with np.load(workdir / f"{name}.result.npz") as stored:
        result = {key: stored[key] for key in stored.files}
    with np.load(workdir / f"{name}.initial.npz") as stored:
        initial = [stored[f"w{i}"] for i in range(len(stored.files))]
    return result, initial


@pytest.mark.parametrize("name", NEUTRAL)
def test_fit_on_jax_equals_tensorflow_and_the_file_crosses(name, jax_workdir):
    result, initial = _result(jax_workdir, name)
    _, model, history, expected = cases.train(name, initial_weights=initial)
    values = [result[f"value{i}"] for i in range(sum(key.startswith("value") for key in result))]
    assert len(values) == len(expected)
    for index, (want, have) in enumerate(zip(expected, values)):
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-5, err_msg=f"{name}: value {index}")
    assert sorted(f"history:{key}" for key in history) == sorted(key for key in result if key.startswith("history:"))
    for key, want in history.items():
        np.testing.assert_allclose(result[f"history:{key}"], np.asarray(want), rtol=1e-4, atol=1e-5,
                                   err_msg=f"{name}: {key}")
    x, _ = cases.data()
    np.testing.assert_allclose(result["predictions"], model.predict(x[:8], verbose=0), rtol=1e-4, atol=1e-5)
    reloaded = keras.saving.load_model(jax_workdir / f"{name}.keras")  # saved under JAX, loaded on TensorFlow
    np.testing.assert_allclose(reloaded.predict(x[:8], verbose=0), result["predictions"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", cases.MODELS)
def test_models_on_jax_equal_tensorflow(name, jax_workdir):
    """The same outputs from the same weights; for `cases.STEPPED_MODELS` also in training mode, and the same SGD
    step (why not for the 50-layer networks: `cases.STEPPED_MODELS`)."""
    result, initial = _result(jax_workdir, name)
    _, outputs, expected = cases.train_model(name, initial_weights=initial)
    assert sum(key.startswith("value") for key in result) == len(expected), f"{name}: another set of weights"
    modes = ("inference", "training")[:len(outputs)]
    assert sorted(key for key in result if not key.startswith("value")) == sorted(modes)
    for mode, want in zip(modes, outputs):
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(result[mode], want, rtol=1e-4, atol=1e-5 * scale, err_msg=f"{name}: {mode}")
    if name in cases.STEPPED_MODELS:
        steps = [np.ravel(w - w0) for w, w0 in zip(expected, initial)]
        differences = [np.ravel(result[f"value{i}"] - w) for i, w in enumerate(expected)]
        relative = np.linalg.norm(np.concatenate(differences)) / np.linalg.norm(np.concatenate(steps))
        assert relative < 1e-2, f"{name}: the step on JAX differs from TensorFlow's by {relative:.2%}"


@pytest.mark.parametrize("name", sorted(TENSORFLOW_ONLY))
def test_tensorflow_only_parts_refuse_jax_with_our_error(name, jax_workdir):
    error = jax_workdir / f"{name}.error.txt"
    assert error.exists(), f"{name} ran on the JAX backend: move it out of TENSORFLOW_ONLY"
    message = error.read_text().strip().splitlines()[-1]
    assert "needs the TensorFlow backend of Keras" in message and "KERAS_BACKEND=tensorflow" in message, message


@pytest.mark.parametrize("module_name", DOCTEST_MODULES)
def test_docstring_examples_run_on_jax(module_name, jax_workdir):
    report = (jax_workdir / f"{module_name}.doctest.txt").read_text()
    counts = report.split("\n", 1)[0].split()
    attempted, failed = int(counts[1]), int(counts[3])
    assert attempted > 0, f"{module_name} has no docstring example"
    assert failed == 0, report[-3000:]
