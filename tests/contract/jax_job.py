"""Runs contract cases under Keras' JAX backend: the worker process of `test_jax_backend.py`.

    python jax_job.py WORKDIR CASE [CASE ...] [--step-all] [--doctests MODULE ...]

For each CASE it reads WORKDIR/CASE.initial.npz (the weights the TensorFlow run started from: the two backends
draw different initial weights for one seed), fits the case exactly as `cases.train` does, and writes
WORKDIR/CASE.result.npz (weights and case state after the fit, the logged values, predictions on the first
8 training inputs) and WORKDIR/CASE.keras (the fitted model saved under JAX). A case that raises writes
WORKDIR/CASE.error.txt with its traceback, and the job goes on to the next case. Each MODULE's docstring
examples run as doctests under JAX; WORKDIR/MODULE.doctest.txt gets "attempted N failed M" and the report.

A CASE named in `cases.MODELS` (a model factory) runs `cases.train_model` instead: it writes the model's outputs
and its weights after one SGD step (see there; `--step-all`: every model steps, as
`benchmarks.studies.jax_vs_tensorflow` needs).
"""

import contextlib
import doctest
import importlib
import io
import os
import pathlib
import sys
import traceback

if __name__ == "__main__":  # not when pytest imports this file (for doctests): the environment stays as it is
    os.environ["KERAS_BACKEND"] = "jax"
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.contract import cases  # noqa: E402


def run(workdir, name, step_all=False):
    with np.load(workdir / f"{name}.initial.npz") as stored:
        initial = [stored[f"w{i}"] for i in range(len(stored.files))]
    if name in cases.MODELS:
        _, outputs, values = cases.train_model(name, initial_weights=initial, step=True if step_all else None)
        np.savez(workdir / f"{name}.result.npz", **dict(zip(("inference", "training"), outputs)),
                 **{f"value{i}": np.asarray(v) for i, v in enumerate(values)})
        return
    _, model, history, values = cases.train(name, initial_weights=initial)
    x, _ = cases.data()
    arrays = {f"value{i}": np.asarray(v) for i, v in enumerate(values)}
    arrays.update({f"history:{key}": np.asarray(v) for key, v in history.items()})
    arrays["predictions"] = np.asarray(model.predict(x[:8], verbose=0))
    np.savez(workdir / f"{name}.result.npz", **arrays)
    model.save(workdir / f"{name}.keras")


def run_doctests(workdir, module_name):
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        failed, attempted = doctest.testmod(importlib.import_module(module_name), report=True)
    (workdir / f"{module_name}.doctest.txt").write_text(f"attempted {attempted} failed {failed}\n{report.getvalue()}")


def main(workdir, arguments):
    workdir = pathlib.Path(workdir)
    if keras.backend.backend() != "jax":
        raise SystemExit(f"Expected the JAX backend. Received: keras.backend.backend()={keras.backend.backend()!r}")
    step_all = "--step-all" in arguments
    arguments = [argument for argument in arguments if argument != "--step-all"]
    names, modules = arguments, []
    if "--doctests" in arguments:
        at = arguments.index("--doctests")
        names, modules = arguments[:at], arguments[at + 1:]
    for module_name in modules:
        run_doctests(workdir, module_name)
    for name in names:
        try:
            run(workdir, name, step_all)
        except Exception:  # noqa: BLE001 - reported per case to the test, which fails on it
            (workdir / f"{name}.error.txt").write_text(traceback.format_exc())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
