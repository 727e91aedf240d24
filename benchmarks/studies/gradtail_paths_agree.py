"""GradTail's analytic and jacobian paths on ResNet-32 and real CIFAR-10-LT: the same θ and q.

    python -m benchmarks.studies.gradtail_paths_agree --data-dir /tmp/cifar10-jpeg      # ~2 minutes on a 2-core CPU

Trains `GradTailModel.from_model(resnet32(10))` (the default selection, the last 3×3 convolution and the
classifier; `"auto"` resolves it to `gradient_path="analytic"`) for a few steps on real CIFAR-10-LT batches
(IF 100, seed 0, batch 128, SGD 0.05 with momentum 0.9), copies its weights and GradTail state into a
`gradient_path="jacobian"` twin, and compares θ and q on the next batch, with batch statistics
(training-mode batch norm: the examples are coupled) and with moving statistics (inference mode).

Writes `benchmarks/results/gradtail_paths_agree.json`.
"""

import argparse
import json
import pathlib
import sys

import keras
import numpy as np

from keras_longtail import data
from keras_longtail.models import resnet32
from keras_longtail.training import GradTailModel

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"


def _compiled(network, **kwargs):
    model = GradTailModel.from_model(network, decay=0.9, **kwargs)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    lt = data.load_cifar_lt("cifar10", imbalance_factor=100, data_dir=args.data_dir, seed=0)
    batches = list(lt.train.shuffle(4096, seed=0).batch(args.batch_size).take(args.steps + 1).as_numpy_iterator())
    keras.utils.set_random_seed(0)
    analytic = _compiled(resnet32(10))
    for x, y in batches[:-1]:
        analytic.train_on_batch(x, y)
    jacobian = _compiled(resnet32(10), gradient_path="jacobian")
    jacobian.set_weights(analytic.get_weights())  # the GradTail state variables are model weights too
    x, y = batches[-1]
    comparison = {}
    for training in (True, False):
        (theta, q), (theta_want, q_want) = [
            [t.numpy() for t in m.gradtail_batch_scores(x, y, training=training)] for m in (analytic, jacobian)]
        comparison["batch_statistics" if training else "moving_statistics"] = {
            "theta_max_abs_difference": float(np.abs(theta - theta_want).max()),
            "theta_range": [float(theta_want.min()), float(theta_want.max())],
            "q_max_abs_difference": float(np.abs(q - q_want).max()),
            "q_range": [float(q_want.min()), float(q_want.max())],
        }
    result = {
        "command": "python -m benchmarks.studies.gradtail_paths_agree " + " ".join(argv if argv is not None else sys.argv[1:]),
        "resolved_path": analytic.gradtail_resolved_path,
        "variables": [v.path for v in analytic.gradtail_variables],
        "steps_before_comparison": args.steps, "batch_size": args.batch_size,
        "comparison": comparison,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gradtail_paths_agree.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
