"""Step time of GBG training relative to plain Keras fit, on ResNet-32 (CIFAR shapes).

    python -m benchmarks.gbg_overhead [--rounds 5] [--steps 3] [--batch-size 128] [--groups 4] [--solve-every 4]

Builds four ResNet-32 models with the same initial weights: plain (built-in train step),
`GBGModel` mode="exact", mode="exact" with `solve_every=k` (alpha re-solved every k-th step) and
mode="representation"; all compiled with SGD 0.1 momentum 0.9 and sparse softmax cross-entropy.
After warm-up steps (tracing), the modes are timed in interleaved rounds (plain, exact, ...) of
`--steps` `train_on_batch` calls (k calls for the amortized one: one solve and k - 1 reuses)
on one fixed long-tailed batch of random images in which every group is present. The
machine is shared, so only ratios of medians over rounds are reported
(benchmarks/results/overhead_gbg.json).
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys

import keras

from benchmarks import _methods
from benchmarks import _timing
from keras_longtail import models

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
# kind -> the shared cost variant it builds (`benchmarks._methods`; None: Keras' own step)
COST_VARIANTS = {"plain": None, "exact": "gbg-exact", "exact-amortized": "gbg-exact-solve4",
                 "representation": "gbg-representation"}
KINDS = tuple(COST_VARIANTS)


def build(kind, grouping, classes=10, initial=None, solve_every=4):
    """A compiled ResNet-32: `kind` "plain" (Keras' step), "exact", "exact-amortized" (`solve_every`) or
    "representation" (`GBGModel` with `grouping`); `initial` weights if given."""
    if kind not in KINDS:
        raise ValueError(f"Expected `kind` in {list(KINDS)}. Received: kind={kind!r}")
    network = models.resnet32(classes)
    if initial is not None:
        network.set_weights(initial)
    if COST_VARIANTS[kind] is not None:
        network = _methods.wrap(COST_VARIANTS[kind], network, grouping, solve_every=solve_every)
    network.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return network


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gbg_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--solve-every", type=int, default=4)
    parser.add_argument("--output", default=str(RESULTS / "overhead_gbg.json"))
    args = parser.parse_args(argv)

    images, labels, grouping = _methods.long_tailed_batch(args.batch_size, args.classes, args.groups)

    keras.utils.set_random_seed(0)
    reference = models.resnet32(args.classes)
    initial = reference.get_weights()

    kinds = list(KINDS)
    steps = {kind: args.solve_every if kind == "exact-amortized" else args.steps for kind in kinds}
    built = {kind: build(kind, grouping, args.classes, initial, args.solve_every) for kind in kinds}
    for kind, model in built.items():
        for _ in range(max(2, steps[kind])):  # traces, and leaves the amortized model at a solve step
            model.train_on_batch(images, labels)

    def report(round_index, times):
        print(f"round {round_index + 1}: " + ", ".join(f"{k} {times[k][-1]:.3f} s/step" for k in kinds), flush=True)

    times = _timing.interleaved({kind: (lambda model=model: model.train_on_batch(images, labels))
                                 for kind, model in built.items()}, args.rounds, calls=steps, on_round=report)
    median = {kind: statistics.median(values) for kind, values in times.items()}
    results = {
        "command": " ".join(["python -m benchmarks.gbg_overhead"] + (argv if argv is not None else sys.argv[1:])),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, shared",
        "model": "resnet32", "batch_size": args.batch_size, "classes": args.classes, "groups": args.groups,
        "rounds": args.rounds, "steps_per_round": args.steps, "solve_every": args.solve_every,
        "ratio_exact": round(median["exact"] / median["plain"], 3),
        "ratio_exact_amortized": round(median["exact-amortized"] / median["plain"], 3),
        "ratio_representation": round(median["representation"] / median["plain"], 3),
        "median_seconds_per_step": {k: round(v, 4) for k, v in median.items()},
        "note": "ratios of medians over interleaved rounds; absolute times vary with the shared machine",
    }
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
