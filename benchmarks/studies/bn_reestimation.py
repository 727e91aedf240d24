"""How much of a saved benchmark model's test accuracy is lost to stale BatchNorm statistics.

    python -m benchmarks.studies.bn_reestimation MODEL.keras [MODEL.keras ...] [--batches 40]

For each saved Fashion-MNIST-LT model (the `benchmarks.run` harness keeps them in
$KERAS_LONGTAIL_BENCHMARK_MODELS), evaluates the class-averaged test accuracy as saved, then
re-estimates every BatchNormalization's moving mean and variance from `--batches` training
batches of 128 (forward passes in training mode with momentum 0.8; no weight changes) and
evaluates again. A large gain means the moving statistics lagged the weights at the end of
training. Writes benchmarks/results/bn_reestimation.json.
"""

import argparse
import json
import pathlib
import sys

import keras
import numpy as np

from keras_longtail import data

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"


def _accuracy(model, dataset, num_classes):
    correct, total = np.zeros(num_classes), np.zeros(num_classes)
    for x, y in dataset:
        predicted, y = np.argmax(model(x, training=False), -1), np.asarray(y)
        np.add.at(total, y, 1)
        np.add.at(correct, y, predicted == y)
    per_class = correct / np.maximum(total, 1)
    return round(100 * float(per_class.mean()), 2), np.round(100 * per_class, 1).tolist()


def reestimate(path, loaded, batches):
    model = keras.saving.load_model(path, compile=False)
    test = loaded.test.batch(500)
    before, before_per_class = _accuracy(model, test, loaded.num_classes)
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.momentum = 0.8
    for x, _ in loaded.train.shuffle(loaded.num_train, seed=0).repeat().batch(128).take(batches):
        model(x, training=True)  # updates only the moving statistics
    after, after_per_class = _accuracy(model, test, loaded.num_classes)
    return {"model": pathlib.Path(path).name, "accuracy_as_saved": before, "accuracy_reestimated": after,
            "per_class_as_saved": before_per_class, "per_class_reestimated": after_per_class}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.bn_reestimation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=str(RESULTS / "bn_reestimation.json"))
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    loaded = data.load_fashion_mnist_lt(100, data_dir=args.data_dir)
    results = {"dataset": "fashion-mnist-lt", "imbalance_factor": 100, "batches": args.batches,
               "command": " ".join(["python -m benchmarks.studies.bn_reestimation"] + sys.argv[1:]),
               "runs": [reestimate(path, loaded, args.batches) for path in args.models]}
    pathlib.Path(args.output).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
