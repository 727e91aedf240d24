"""Step-time overhead of GradTail with patches on the depth network's decoder biases, per gradient path.

    python -m benchmarks.gradtail_depth_overhead               # ~6 minutes on a shared 2-core CPU
    python -m benchmarks.gradtail_depth_overhead --variants plain,gradtail_bias --repeats 7

One process, random 128×320 scenes (batch 10, the depth benchmark's size), `depth_unet` at width 0.5, Adam.
Variants are timed interleaved (repeat r times: k steps of each variant, in turn) after a warm-up call each
(the tracing) and compared by the median over the repeats of the mean step time; only ratios are reported
(the machine is shared). Variants:

- `plain`: the network with Keras' own step on the per-pixel ℓ1;
- `gradtail_bias`: `training.gradtail_depth` (biases of `decoder_up_1` and `decoder_up_2`, 6 + 1 random
  patches, so 70 pseudo-examples per batch) on the `"bias"` path: K = 7 vectorized backward passes of
  S_k = Σ_b L_bk to the two layer outputs, per-example bias gradients summed from them;
- `gradtail_jacobian`: the same model on the generic `"jacobian"` path (what `"auto"` chose before the bias
  path existed): `GradientTape.jacobian` of the 70 pseudo-example losses, i.e. 70 vectorized backward passes
  each over the whole batch.

Before timing, the two GradTail variants are checked to give the same θ and weights on one batch (same
state). Writes `benchmarks/results/overhead_gradtail_depth.json`.
"""

import argparse
import json
import pathlib
import platform
import statistics
import sys

import keras
import numpy as np
import tensorflow as tf

from benchmarks import _timing
from keras_longtail import models
from keras_longtail import training

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
VARIANTS = ("plain", "gradtail_bias", "gradtail_jacobian")
IMAGE_SIZE = (128, 320)


def build(variant, initial):
    network = models.depth_unet(IMAGE_SIZE + (3,), width_multiplier=0.5)
    network.set_weights(initial)
    if variant == "plain":
        model = network
    else:
        model = training.gradtail_depth(network)
        if variant == "gradtail_jacobian":  # the same configuration on the generic path
            model = training.GradTailModel.from_model(
                network, gradient_variables=model.gradtail_variables, pivot=model.pivot, decay=model.decay,
                activation=model.activation, patches=model.patches, gradient_path="jacobian")
        assert model.gradtail_resolved_path == variant.split("_")[1]
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.MeanAbsoluteError(reduction="mean_with_sample_weight"))
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    shape = (args.batch_size,) + IMAGE_SIZE
    images = tf.constant(rng.uniform(size=shape + (3,)).astype(np.float32))
    mask = rng.uniform(size=shape + (1,)) < 0.2
    depths = tf.constant((rng.uniform(2, 90, size=shape + (1,)) * mask).astype(np.float32))
    weights = tf.constant(mask.astype(np.float32))
    initial = models.depth_unet(IMAGE_SIZE + (3,), width_multiplier=0.5).get_weights()
    built = {name: build(name, initial) for name in variants}
    agreement = None
    if "gradtail_bias" in built and "gradtail_jacobian" in built:
        scores = []
        for name in ("gradtail_bias", "gradtail_jacobian"):
            state = np.random.default_rng(1)
            for variable in built[name].gradtail_mean_gradient:
                variable.assign(state.normal(size=variable.shape).astype(np.float32))
            built[name].gradtail_sigma.assign(0.3)
            built[name].gradtail_step.assign(5.0)
            scores.append([s.numpy() for s in built[name].gradtail_batch_scores(images, depths, weights)])
        agreement = {"max_abs_theta_difference": float(np.abs(scores[0][0] - scores[1][0]).max()),
                     "max_abs_weight_difference": float(np.abs(scores[0][1] - scores[1][1]).max()),
                     "pseudo_examples": int(scores[0][0].size)}
    steps = {name: (lambda model=model: model.train_on_batch(images, depths, sample_weight=weights))
             for name, model in built.items()}
    _timing.first_calls(steps)  # tracing
    seconds = _timing.interleaved(steps, args.repeats, calls=args.steps)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    result = {
        "command": "python -m benchmarks.gradtail_depth_overhead " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
                   f"TF {tf.__version__}, Keras {keras.__version__}, shared 2-core CPU",
        "image_size": list(IMAGE_SIZE), "width_multiplier": 0.5, "batch_size": args.batch_size,
        "repeats": args.repeats, "steps_per_repeat": args.steps,
        "ratio_to_plain": {name: round(medians[name] / medians["plain"], 2) for name in variants if name != "plain"},
        "per_repeat_ratios": {name: _timing.per_round_ratios(seconds, name, "plain", digits=2)
                              for name in variants if name != "plain"},
        "bias_vs_jacobian_scores": agreement,
        "note": "Ratios of median step times; absolute times are not reported (shared machine).",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead_gradtail_depth.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
