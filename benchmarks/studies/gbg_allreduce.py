"""Step time of GBG's amortized solve under MirroredStrategy (two logical CPUs): the cost of its all-reduce.

    python -m benchmarks.studies.gbg_allreduce [--label after] [--rounds 7] [--steps 4] [--hidden 1024]

Builds, with the same initial weights, an MLP (input 256, two hidden layers of `--hidden` units,
10 classes: 1.3 M parameters at the default) as a plain Keras model (the built-in step) and as
`GBGModel`s (mode="exact", G = 4 groups) with `solve_every` = 1 (the paper: every step solves),
4 and 10**9 (alpha solved once, at step 0, then reused: the steps between solves alone). All are
compiled with SGD 0.1 and sparse softmax cross-entropy inside one `MirroredStrategy` over two
logical CPU devices. After warm-up steps (tracing, and the one solve of `solve_every=10**9`), the
models are timed in interleaved rounds of `--steps` `train_on_batch` calls on one fixed batch of
64 in which every group is present. Before issue 19.3's fix the steps between solves all-reduced
G x parameters zeros (a synchronization point could not sit inside the step's `tf.cond`); now they
all-reduce a zero-sized tensor. Reports the median seconds per step over rounds and the ratio to
the plain step, merged into benchmarks/results/gbg_allreduce.json under `--label` (run it once
on the code before the fix with `--label before`). About a minute on two shared cores.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"
SOLVE_EVERY = (1, 4, 10 ** 9)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--output", default=str(RESULTS / "gbg_allreduce.json"))
    args = parser.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np

    from keras_longtail import models
    from keras_longtail.gbg import ClassGrouping
    from keras_longtail.training import GBGModel

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 256)).astype("float32")
    y = np.concatenate([np.arange(10), rng.choice(10, size=54, p=np.linspace(2, 0.2, 10) / 11)]).astype("int32")
    grouping = ClassGrouping([0, 0, 0, 1, 1, 1, 2, 2, 3, 3], 4)
    strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")][:2])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    built = {}
    with strategy.scope():
        keras.utils.set_random_seed(0)
        initial = models.mlp(10, (256,), hidden_units=(args.hidden, args.hidden)).get_weights()
        for kind in ("plain",) + SOLVE_EVERY:
            network = models.mlp(10, (256,), hidden_units=(args.hidden, args.hidden))
            network.set_weights(initial)
            model = network if kind == "plain" else GBGModel.from_model(network, grouping, solve_every=kind)
            model.compile(keras.optimizers.SGD(0.1), loss)
            built[kind] = model
    parameters = int(sum(np.prod(w.shape) for w in initial))
    for model in built.values():  # warm-up: tracing, and the one solve of solve_every=10**9
        for _ in range(2):
            model.train_on_batch(x, y)
    times = {kind: [] for kind in built}
    for _ in range(args.rounds):
        for kind, model in built.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            times[kind].append((time.perf_counter() - start) / args.steps)
    medians = {str(kind): statistics.median(values) for kind, values in times.items()}
    record = {
        "seconds_per_step": medians,
        "ratio_to_plain": {kind: value / medians["plain"] for kind, value in medians.items()},
        "rounds": args.rounds, "steps_per_round": args.steps, "parameters": parameters, "groups": 4,
        "batch_size": 64, "replicas": strategy.num_replicas_in_sync,
    }
    output = pathlib.Path(args.output)
    results = json.loads(output.read_text()) if output.is_file() else {}
    results.setdefault("setup", {"python": sys.version.split()[0], "tensorflow": tf.__version__,
                                 "keras": keras.__version__, "machine": platform.machine(),
                                 "cpus": os.cpu_count(), "note": "MirroredStrategy over two logical CPU devices "
                                 "of one shared 2-core machine; medians over interleaved rounds"})
    results[args.label] = record
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps({args.label: record}, indent=2))


if __name__ == "__main__":
    main()
