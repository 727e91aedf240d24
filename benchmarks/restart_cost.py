"""What a checkpoint costs each method on ResNet-32 (CIFAR shapes): size on disk, write and restore time.

    python -m benchmarks.restart_cost [--rounds 5] [--classes 10]

For CE, GALA (`GALALoss`), GradTail (`GradTailModel`, classifier layer) and GBG (`GBGModel`, exact
mode, 4 groups), builds ResNet-32 compiled with SGD 0.1 momentum 0.9, takes one training step (so
the optimizer has its slots), then times `keras_longtail.callbacks.BackupAndRestore` writing its
end-of-epoch checkpoint (`on_epoch_end`: weights, optimizer, training metadata and the losses'
state) and a fresh copy of the model restoring it (`on_train_begin`), `--rounds` times each; the
median is reported with the checkpoint's size (benchmarks/results/restart_cost.json). The machine
is shared, so times are indicative; compare them with an epoch (CIFAR-10-LT: 85-105 s here).
"""

import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile

import keras
import numpy as np

from benchmarks import _methods
from benchmarks import _timing
from keras_longtail import models
from keras_longtail import recipes
from keras_longtail.callbacks import BackupAndRestore
from keras_longtail.gbg import ClassGrouping

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
# registered method -> the shared cost variant whose checkpoint is measured (`benchmarks._methods`)
COST_VARIANTS = {"ce": "ce", "gala": "gala", "gradtail": "gradtail-classifier", "gbg": "gbg-exact"}
# the registered methods, in the registry's order, that have a variant here
METHODS = [name for name in recipes.METHODS if name in COST_VARIANTS]


def _builders(num_classes):
    def ce():
        return models.resnet32(num_classes), _methods.cross_entropy()

    def gala():  # the loss only: its state is what the checkpoint adds (no callback needed to write it)
        return models.resnet32(num_classes), _methods.loss_and_callbacks("gala", num_classes)[0]

    def gradtail():
        network, loss = ce()
        return _methods.wrap(COST_VARIANTS["gradtail"], network), loss

    def gbg():
        network, loss = ce()
        return _methods.wrap(COST_VARIANTS["gbg"], network, ClassGrouping(np.arange(num_classes) % 4)), loss

    return {"ce": ce, "gala": gala, "gradtail": gradtail, "gbg": gbg}


def _compiled(build, x, y):
    keras.utils.set_random_seed(0)
    model, loss = build()
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss=loss)
    model.train_on_batch(x, y)
    return model


def _directory_size(path):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def measure(name, build, rounds, x, y):
    model, fresh = _compiled(build, x, y), _compiled(build, x, y)
    writes, restores = [], []
    directory = tempfile.mkdtemp(prefix=f"restart_cost_{name}_")
    try:
        for _ in range(rounds):
            writer = BackupAndRestore(directory, delete_checkpoint=False)
            writer.set_model(model)
            writes.append(_timing.timed(lambda: writer.on_epoch_end(0))[1])
            reader = BackupAndRestore(directory, delete_checkpoint=False)
            reader.set_model(fresh)
            restores.append(_timing.timed(reader.on_train_begin)[1])
        for want, have in zip(model.get_weights(), fresh.get_weights()):
            np.testing.assert_array_equal(have, want)  # the restore is complete
        size = _directory_size(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return {"method": name, "parameters": int(model.count_params()), "checkpoint_bytes": int(size),
            "write_s_median": statistics.median(writes), "restore_s_median": statistics.median(restores),
            "write_s": writes, "restore_s": restores}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restart_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated registered methods among {METHODS} (default: all of them)")
    parser.add_argument("--output", default=str(RESULTS / "restart_cost.json"))
    args = parser.parse_args(argv)
    unknown = [name for name in args.methods.split(",") if name not in METHODS]
    if unknown:
        parser.error(f"Expected --methods among {METHODS}. Received unknown: {unknown}")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch_size, 32, 32, 3)).astype("float32")
    y = (np.arange(args.batch_size) % args.classes).astype("int32")
    builders = _builders(args.classes)
    rows = [measure(name, builders[name], args.rounds, x, y) for name in args.methods.split(",")]
    result = {"command": "python -m benchmarks.restart_cost " + " ".join(argv if argv is not None else sys.argv[1:]),
              "rounds": args.rounds, "classes": args.classes, "platform": platform.platform(),
              "cpu_count": os.cpu_count(), "keras": keras.__version__, "rows": rows}
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['method']:>9}: {row['checkpoint_bytes'] / 1e6:6.2f} MB, write {row['write_s_median'] * 1e3:7.1f} ms, "
              f"restore {row['restore_s_median'] * 1e3:7.1f} ms")
    return result


if __name__ == "__main__":
    main()
