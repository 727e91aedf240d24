"""Step-time overhead of GradTail's train step over the plain Keras step on ResNet-32.

    python -m benchmarks.gradtail_overhead                 # ~5 minutes on a 2-core CPU
    python -m benchmarks.gradtail_overhead --repeats 9 --steps 4

One process, CIFAR-sized random batches (128 × 32 × 32 × 3, 10 classes), SGD with momentum. The variants
are timed interleaved (repeat r times: k steps of each variant, in turn), after one warm-up call each (the
tracing), and compared by the median over the repeats of the mean step time; only ratios are reported
(the machine is shared). Variants:

- `plain`: `keras_longtail.models.resnet32` with Keras' own train step;
- `gradtail_classifier_dense`: GradTail on the classifier's kernel and bias (analytic Dense path);
- `gradtail_last_two_analytic`: GradTail's default selection for ResNet-32, the last two layers with a
  kernel (the last 3×3 convolution and the classifier, the paper's "last two layers"), on the path
  `"auto"` picks for it: exact per-example gradients from im2col patches with the batch norm's
  coupling in closed form (`gradient_path="analytic"`);
- `gradtail_last_two_jacobian`: the same selection with `tf.GradientTape.jacobian` through the
  convolution and its batch norm (`gradient_path="jacobian"`, exact for any layer).

The first call of each variant (tracing) is recorded too, as a ratio to plain (one sample each).

Writes `benchmarks/results/overhead_gradtail.json` (or `--output`).
"""

import argparse
import json
import pathlib
import platform
import sys

import keras
import numpy as np
import tensorflow as tf

from benchmarks import _methods
from benchmarks import _timing
from keras_longtail.models import resnet32

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
# variant -> the shared cost variant it builds (`benchmarks._methods`; None: Keras' own step)
COST_VARIANTS = {"plain": None, "gradtail_classifier_dense": "gradtail-classifier",
                 "gradtail_last_two_analytic": "gradtail-last-two",
                 "gradtail_last_two_jacobian": "gradtail-last-two-jacobian"}
VARIANTS = tuple(COST_VARIANTS)


def build(variant):
    network = resnet32(10)
    if COST_VARIANTS[variant] is not None:
        network = _methods.wrap(COST_VARIANTS[variant], network)
    network.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return network


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--output", default=str(RESULTS / "overhead_gradtail.json"))
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    if variants[0] != "plain" or any(name not in VARIANTS for name in variants):
        parser.error(f"--variants must start with plain and name variants of {VARIANTS}; got {args.variants}")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(args.batch_size, 32, 32, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 10, size=args.batch_size).astype(np.int32))
    models = {name: build(name) for name in variants}
    steps = {name: (lambda model=model: model.train_on_batch(images, labels)) for name, model in models.items()}
    first_call = _timing.first_calls(steps)  # tracing
    seconds = _timing.interleaved(steps, args.repeats, calls=args.steps)
    ratios = {name: round(_timing.ratio_of_medians(seconds, name, "plain"), 3)
              for name in variants if name != "plain"}
    result = {
        "command": "python -m benchmarks.gradtail_overhead " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
                   f"TF {tf.__version__}, Keras {keras.__version__}, shared 2-core CPU",
        "batch_size": args.batch_size, "repeats": args.repeats, "steps_per_repeat": args.steps,
        "ratio_to_plain": ratios,
        "per_repeat_ratios": {name: _timing.per_round_ratios(seconds, name, "plain") for name in variants
                              if name != "plain"},
        "first_call_ratio_to_plain": {name: round(first_call[name] / first_call["plain"], 2)
                                      for name in variants if name != "plain"},
        "note": "Ratios of median step times; absolute times are not reported (shared machine). "
                "first_call_ratio_to_plain: the first call (tracing) of each variant, one sample each.",
    }
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
