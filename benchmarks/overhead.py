"""Step-time overhead of each method's training step relative to a plain `fit` step.

    python -m benchmarks.overhead --methods ce,gala,gala-official --repeats 7 --steps 10
    python -m benchmarks.overhead --methods ce,async-phase-two      # dual-phase's phase-II step

Every method trains the same ResNet-32 on the same fixed batch (128 CIFAR-shaped random images); the methods are
timed interleaved in one process (repeat r times: each method runs `steps` compiled train steps), and the
reported figure is the median over repeats of (method step time / CE step time). Only ratios are reported:
absolute times depend on the machine and on whatever else it runs. Writes `results/overhead.json`
(merging with the methods already there) and prints a Markdown table.

Also `--scale`: the cost of the GALA loss step (forward + backward + statistics) alone on a linear classifier
over 512 features, for 100, 1,000 and 8,142 classes, relative to plain cross-entropy at the same size.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys

import keras
import numpy as np

from benchmarks import _methods
from benchmarks import _timing

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def _loss(variant):
    def build(num_classes):
        return _methods.loss_and_callbacks(variant, num_classes)

    return build


# name -> function(num_classes) returning (loss, callbacks) for compile/fit on the plain model
METHODS = {name: _loss(name) for name in ("ce", "gala", "gala-official")}
# name -> function() returning a compiled model of its own (same ResNet-32, same SGD): the dual-phase
# phase-II step (the frozen phase-I model's forward pass, L_intra and L_dis on top of CE)
MODELS = {"async-phase-two": _methods.async_phase_two}


def _compiled(build_model, loss, jit_compile):
    model = build_model()
    model.compile(keras.optimizers.SGD(0.01, momentum=0.9), loss=loss, jit_compile=jit_compile)
    return model


def time_steps(models, x, y, steps, repeats):
    """Interleaved timing: {name: [seconds per step, one per repeat]}."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(2)
    for model, callbacks in models.values():  # compile and warm up
        model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0, callbacks=callbacks)

    def fit(model, callbacks):
        return lambda: model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=callbacks)

    return _timing.interleaved({name: fit(*built) for name, built in models.items()}, repeats,
                               steps_per_call=steps)


def ratios(times, baseline="ce"):
    return {name: round(_timing.median_of_ratios(times, name, baseline), 3) for name in times}


def run_overhead(methods, steps, repeats, batch_size=128, jit_compile=False):
    from keras_longtail import models as lt_models

    keras.utils.set_random_seed(0)
    x = np.random.rand(batch_size, 32, 32, 3).astype("float32")
    y = np.random.randint(0, 10, size=batch_size)
    built = {}
    for name in ["ce"] + [m for m in methods if m != "ce"]:
        if name in MODELS:
            built[name] = (MODELS[name](), [])
            continue
        loss, callbacks = METHODS[name](10)
        built[name] = (_compiled(lambda: lt_models.resnet32(10), loss, jit_compile), callbacks)
    times = time_steps(built, x, y, steps, repeats)
    return ratios(times), {name: round(statistics.median(v) * 1e3, 1) for name, v in times.items()}


def run_scale(class_counts=(100, 1000, 8142), features=512, batch_size=128, steps=20, repeats=5):
    result = {}
    for num_classes in class_counts:
        keras.utils.set_random_seed(0)
        x = np.random.rand(batch_size, features).astype("float32")
        y = np.random.randint(0, num_classes, size=batch_size)
        built = {}
        for name in ("ce", "gala"):
            loss, callbacks = METHODS[name](num_classes)
            built[name] = (_compiled(
                lambda: keras.Sequential([keras.Input((features,)), keras.layers.Dense(num_classes)]),
                loss, False), callbacks)
        times = time_steps(built, x, y, steps, repeats)
        result[str(num_classes)] = {"gala_over_ce": ratios(times)["gala"],
                                    "ms_per_step": {n: round(statistics.median(v) * 1e3, 2) for n, v in times.items()}}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of "
                        f"{sorted(METHODS) + sorted(MODELS)}")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--scale", action="store_true", help="also run the GALA class-count scale suite")
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS and m not in MODELS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {sorted(METHODS) + sorted(MODELS)}")
    path = RESULTS / "overhead.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    step_ratios, ms = run_overhead(methods, args.steps, args.repeats)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    command = " ".join(["python -m benchmarks.overhead"] + (argv if argv is not None else sys.argv[1:]))
    for name in methods:
        stored.setdefault("resnet32_step", {})[name] = {
            "ratio_to_ce": step_ratios[name], "ms_per_step_median": ms[name], "command": command,
            "machine": machine, "repeats": args.repeats, "steps": args.steps}
    if args.scale:
        stored["gala_scale"] = {"classes": run_scale(), "command": command, "machine": machine}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2) + "\n")
    print("| method | step time / CE step |\n|---|---|")
    for name, entry in stored["resnet32_step"].items():
        print(f"| {name} | {entry['ratio_to_ce']:.2f}× |")
    if "gala_scale" in stored:
        for classes, entry in stored["gala_scale"]["classes"].items():
            print(f"GALA at {classes} classes: {entry['gala_over_ce']:.2f}× CE ({entry['ms_per_step']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
