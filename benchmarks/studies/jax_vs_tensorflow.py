"""The networks of `keras_longtail.models` on Keras' JAX backend next to TensorFlow, from the same weights.

    python -m benchmarks.studies.jax_vs_tensorflow --output benchmarks/results/jax_vs_tensorflow.json

Measures what `tests/contract/test_jax_backend.py` bounds, for every network of `cases.MODELS` (the test steps
only `cases.STEPPED_MODELS`): each network is built on TensorFlow in this process and on JAX in a worker process
(`tests/contract/jax_job.py --step-all`, KERAS_BACKEND=jax), both from the weights TensorFlow draws for seed 0 (the
backends draw different ones), on the test's batch (`cases.model_data`, batch `cases.MODEL_BATCH`). Reported per
network:

- `inference`, `training`: the outputs' largest difference, relative to the largest output,
  max |y_jax - y_tf| / max |y_tf|, in inference mode and in training mode (batch statistics);
- `step`: one SGD step (rate 0.1) on the batch, as the relative difference of the weights after it,
  ||w_jax - w_tf|| / ||w_tf - w_0|| (moving batch-norm statistics included), and `step_cosine`, the cosine of the two
  backends' weight changes;
- `float32_vs_float64`: the same measures between TensorFlow in float32 (as above) and TensorFlow in float64 from the
  same weights: the size float32 rounding alone gives each network, to read the backends' gap against.

Needs jax (the `test` extra installs it). A few minutes on CPU: the 50-layer networks compile on both backends.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks import _timing

ROOT = pathlib.Path(__file__).resolve().parents[2]


def compare(reference, other, initial):
    """The measures above for one network, of `other` against `reference` (TensorFlow's float32 run against its
    float64 one, JAX's against TensorFlow's): each an (outputs, weights after the step) pair."""
    result = {}
    for mode, want, have in zip(("inference", "training"), reference[0], other[0]):
        result[mode] = float(np.max(np.abs(have - want)) / np.max(np.abs(want)))
    # In float64: a float32 norm over the 23 M weights of a 50-layer net is itself off by about 1e-4.
    step_reference = np.concatenate([np.ravel(w - w0) for w, w0 in zip(reference[1], initial)]).astype("float64")
    step_other = np.concatenate([np.ravel(w - w0) for w, w0 in zip(other[1], initial)]).astype("float64")
    result["step"] = float(np.linalg.norm(step_other - step_reference) / np.linalg.norm(step_reference))
    result["step_cosine"] = float(step_other @ step_reference
                                  / (np.linalg.norm(step_other) * np.linalg.norm(step_reference)))
    return result


def float64_run(cases, name, initial):
    """`cases.train_model` on TensorFlow with every weight and computation in float64, from the same weights."""
    import keras

    policy = keras.config.dtype_policy()  # the global policy, not floatx: it is fixed once a layer has been built
    keras.config.set_dtype_policy("float64")
    try:
        model, outputs, values = cases.train_model(
            name, initial_weights=[w.astype("float64") for w in initial], step=True)
    finally:
        keras.config.set_dtype_policy(policy)
    if any(weight.dtype != "float64" for weight in model.weights):
        raise RuntimeError(f"Expected {name} to be built in float64. Received weights of another dtype")
    return outputs, values


def run_jax_worker(workdir, names, timeout):
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    worker = ROOT / "tests" / "contract" / "jax_job.py"
    try:
        completed = subprocess.run([sys.executable, str(worker), str(workdir), *names, "--step-all"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"The JAX worker did not finish within --timeout {timeout} s.") from None
    if completed.returncode != 0:
        raise SystemExit(f"The JAX worker failed (exit {completed.returncode}):\n{completed.stdout[-3000:]}")
    for name in names:
        error = workdir / f"{name}.error.txt"
        if error.exists():
            raise SystemExit(f"{name} failed on the JAX backend:\n{error.read_text()[-3000:]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=None,
                        help="comma-separated names from tests/contract/cases.py's MODELS (default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds the JAX worker may take")
    parser.add_argument("--output", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from tests.contract import cases

    names = list(cases.MODELS) if args.models is None else [name.strip() for name in args.models.split(",")]
    unknown = sorted(set(names) - set(cases.MODELS))
    if unknown or not names:
        parser.error(f"Expected --models from {list(cases.MODELS)}. Received: --models={args.models!r}")
    if importlib.util.find_spec("jax") is None:
        parser.error('Expected jax to be installed (`pip install -e ".[test]"` installs it). Received: no jax')
    import keras

    if keras.backend.backend() != "tensorflow":
        parser.error("Expected this process to run Keras' TensorFlow backend (the worker runs JAX). Received: "
                     f"KERAS_BACKEND={keras.backend.backend()!r}")

    with tempfile.TemporaryDirectory() as directory:
        workdir = pathlib.Path(directory)
        initial = {}
        for name in names:
            initial[name] = cases.initial_model_weights(name)
            np.savez(workdir / f"{name}.initial.npz", **{f"w{i}": w for i, w in enumerate(initial[name])})
        print(f"[jax_vs_tensorflow] JAX worker: {', '.join(names)}", flush=True)
        run_jax_worker(workdir, names, args.timeout)
        results = {}
        for name in names:
            with np.load(workdir / f"{name}.result.npz") as stored:
                jax_outputs = [stored[mode] for mode in ("inference", "training")]
                jax_values = [stored[f"value{i}"] for i in range(len(initial[name]))]
            _, outputs, values = cases.train_model(name, initial_weights=initial[name], step=True)
            results[name] = compare((outputs, values), (jax_outputs, jax_values), initial[name])
            results[name]["float32_vs_float64"] = compare(
                float64_run(cases, name, initial[name]), (outputs, values), initial[name])
            results[name]["stepped_in_the_test"] = name in cases.STEPPED_MODELS
            print(f"[jax_vs_tensorflow] {name}: {results[name]}", flush=True)

    import tensorflow as tf

    versions = {"keras": keras.version(), "tensorflow": tf.__version__, "jax": importlib.metadata.version("jax")}
    report = {
        "batch": cases.MODEL_BATCH,
        "models": results,
        "test_bounds": {"outputs_rtol": 1e-4, "step": 1e-2},  # tests/contract/test_jax_backend.py's
        "versions": versions,
        "command": " ".join(["python -m benchmarks.studies.jax_vs_tensorflow"] + list(sys.argv[1:] if argv is None
                                                                                         else argv)),
        "machine": f"{_timing.machine()}, Python {platform.python_version()}",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"[jax_vs_tensorflow] wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
