"""Monocular depth on synthetic road scenes: mean relative error per distance bin (GradTail Table 2 layout).

    python -m benchmarks.depth_synthetic                      # baseline, small budget (~4 min on 2 cores)
    python -m benchmarks.depth_synthetic --variants baseline --epochs 30 --train-scenes 2000

Every variant trains the same `depth_unet` on the same `synthetic_depth_scenes` (rare
far-range scenes) with `MaskedL1`, Adam at a constant learning rate and the same seed,
then reports `BinnedMeanRelativeError` (< 20 m, 20-40 m, 40-60 m, > 60 m, total) on
held-out scenes. Results go to `benchmarks/results/depth_synthetic.json`.

A variant is a `wrap_model(model) -> model` hook applied to the freshly built network
before it is compiled (e.g. a GradTail train-step wrapper on the biases of
`decoder_up_1` and `decoder_up_2`); `register_variant("gradtail", hook)` adds one.
Compared with the paper (192×480, batch 10, lr 2e-4 for a long schedule on Waymo), the
small budget uses 128×320 images, a half-width network and lr 1e-3 so that a few
minutes on a CPU reach a meaningful error.
"""

import argparse
import json
import pathlib
import platform
import time

import keras
import numpy as np

from keras_longtail import data as lt_data
from keras_longtail import losses as lt_losses
from keras_longtail import metrics as lt_metrics
from keras_longtail import models as lt_models

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "depth_synthetic.json"

# name -> wrap_model hook (None: the plain model). The lead registers "gradtail" here.
VARIANTS = {"baseline": None}

SMALL = {
    "image_size": (128, 320),
    "width_multiplier": 0.5,
    "train_scenes": 600,
    "test_scenes": 200,
    "far_probability": 0.15,
    "epochs": 12,
    "batch_size": 10,
    "learning_rate": 1e-3,
    "seed": 0,
}


MRE_KEYS = lt_metrics.BinnedMeanRelativeError().bin_names() + ["mre_total"]


def register_variant(name, wrap_model):
    """Adds a variant: `wrap_model(model)` returns the model to compile and fit."""
    VARIANTS[name] = wrap_model


def bin_fractions(dataset, bins=(20, 40, 60)):
    """Share (%) of the ground-truth pixels of a batched (image, depth) dataset in each bin."""
    edges = [0.0, *bins, np.inf]
    counts = np.zeros(len(edges) - 1)
    for _, depth in dataset.as_numpy_iterator():
        valid = depth[depth > 0]
        counts += np.histogram(valid, bins=edges)[0]
    metric = lt_metrics.BinnedMeanRelativeError(bins=bins)
    return {name: round(float(100 * c / counts.sum()), 2) for name, c in zip(metric.bin_names(), counts)}


def run_variant(name, wrap_model=None, image_size=(128, 320), width_multiplier=0.5, train_scenes=600,
                test_scenes=200, far_probability=0.15, epochs=12, batch_size=10, learning_rate=1e-3, seed=0,
                verbose=2):
    """Trains one variant and returns its results dict (MRE in % per bin, training time, history)."""
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    train = lt_data.synthetic_depth_scenes(train_scenes, image_size, far_probability=far_probability, seed=seed)
    test = lt_data.synthetic_depth_scenes(test_scenes, image_size, far_probability=far_probability,
                                          seed=seed + 10_000)
    train = train.cache().shuffle(train_scenes, seed=seed).batch(batch_size, drop_remainder=True)
    test = test.cache().batch(batch_size)

    model = lt_models.depth_unet(tuple(image_size) + (3,), width_multiplier=width_multiplier)
    if wrap_model is not None:
        model = wrap_model(model)
    model.compile(keras.optimizers.Adam(learning_rate), loss=lt_losses.MaskedL1(),
                  metrics=[lt_metrics.BinnedMeanRelativeError()])
    start = time.perf_counter()
    history = model.fit(train.prefetch(tf.data.AUTOTUNE), epochs=epochs, verbose=verbose, shuffle=False)
    train_seconds = time.perf_counter() - start
    evaluated = model.evaluate(test, verbose=0, return_dict=True)
    return {
        "variant": name,
        "mre": {k: round(float(evaluated[k]), 3) for k in MRE_KEYS},
        "test_masked_l1": round(float(evaluated["loss"]), 4),
        "train_seconds": round(train_seconds, 1),
        "train_loss": [round(float(v), 4) for v in history.history["loss"]],
    }


def run(variants=("baseline",), output=RESULTS, verbose=2, **overrides):
    """Runs the variants with the small budget (updated by `overrides`) and writes the JSON."""
    config = {**SMALL, **overrides}
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"Expected `variants` among {sorted(VARIANTS)}. Received unknown: {unknown}")
    test = lt_data.synthetic_depth_scenes(config["test_scenes"], config["image_size"],
                                          far_probability=config["far_probability"],
                                          seed=config["seed"] + 10_000).batch(config["batch_size"])
    results = {
        "task": "synthetic monocular depth (keras_longtail.data.synthetic_depth_scenes)",
        "config": {**config, "image_size": list(config["image_size"]), "loss": "MaskedL1",
                   "optimizer": "Adam, constant learning rate"},
        "test_pixel_share_percent": bin_fractions(test),
        "machine": f"{platform.machine()}, {platform.python_version()}, keras {keras.__version__}",
        "variants": {},
    }
    for name in variants:
        results["variants"][name] = run_variant(name, VARIANTS[name], verbose=verbose, **config)
        if output:
            pathlib.Path(output).parent.mkdir(parents=True, exist_ok=True)
            pathlib.Path(output).write_text(json.dumps(results, indent=2) + "\n")
    return results


def format_table(results):
    """The per-bin table (GradTail Table 2 columns)."""
    names = MRE_KEYS
    rows = []
    for name, result in results["variants"].items():
        rows.append(f"{name:<24}" + "".join(f"{result['mre'][k]:>12.2f}" for k in names))
    header = f"{'MRE %':<24}" + "".join(f"{k.replace('mre_', ''):>12}" for k in names)
    return "\n".join([header, "-" * len(header)] + rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="baseline", help=f"comma-separated, from {sorted(VARIANTS)}")
    parser.add_argument("--epochs", type=int, default=SMALL["epochs"])
    parser.add_argument("--train-scenes", type=int, default=SMALL["train_scenes"])
    parser.add_argument("--test-scenes", type=int, default=SMALL["test_scenes"])
    parser.add_argument("--seed", type=int, default=SMALL["seed"])
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    args = parser.parse_args(argv)
    results = run([v for v in args.variants.split(",") if v], output=args.output, verbose=args.verbose,
                  epochs=args.epochs, train_scenes=args.train_scenes, test_scenes=args.test_scenes, seed=args.seed)
    print(format_table(results))
    print(f"test pixels per bin (%): {results['test_pixel_share_percent']}")
    print(f"results written to {args.output}")


if __name__ == "__main__":  # pragma: no cover
    main()
