"""Step time of GradTail (default gradient path) over a plain Keras step as the selected layers grow.

    python -m benchmarks.gradtail_scale [--widths 64,256,1024,2048] [--features 512] [--steps 20] [--repeats 5]

For each hidden width w, an MLP classifier `keras_longtail.models.mlp(10, (features,), hidden_units=(w,))`
on a fixed random batch (128 × `--features`, 10 classes), SGD with momentum, trained with Keras' own step
(`plain`) and as `GradTailModel.from_model(...)` with the default selection (the last two layers with a
kernel: the hidden layer and the classifier, features·w + w + 10·w + 10 selected parameters) on the default
`"auto"` path, which resolves to `"dense"` here (per-example statistics from the layer inputs and output
gradients; the per-example gradients are never materialized). The two are timed interleaved with
`benchmarks.overhead.time_steps` (`--repeats` rounds of `--steps` `fit` steps each, after a two-step
warm-up) and compared by the median over rounds of the per-round ratio. Only ratios are meant to be read
(the machine is shared); median milliseconds per step are recorded for scale.

Writes `benchmarks/results/scale_gradtail.json` (or `--output`); `python -m benchmarks.plot_scale` plots it.
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

from benchmarks.overhead import ratios, time_steps

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
CLASSES = 10


def build(variant, width, features):
    from keras_longtail.models import mlp
    from keras_longtail.training import GradTailModel

    keras.utils.set_random_seed(0)
    network = mlp(CLASSES, (features,), hidden_units=(width,))
    if variant == "gradtail":
        network = GradTailModel.from_model(network)
        if network.gradtail_resolved_path != "dense":
            raise RuntimeError(f"Expected the default path to resolve to 'dense' on the MLP. "
                               f"Received: {network.gradtail_resolved_path!r}")
    network.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return network


def selected_parameters(model):
    return int(sum(np.prod(v.shape) for v in model.gradtail_variables))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gradtail_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="64,256,1024,2048")
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(RESULTS / "scale_gradtail.json"))
    args = parser.parse_args(argv)
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        parser.error(f"Expected --widths as comma-separated positive integers. Received: --widths {args.widths!r}")
    if not widths or min(widths) < 1:
        parser.error(f"Expected --widths as comma-separated positive integers. Received: --widths {args.widths!r}")
    for name in ("features", "batch_size", "steps", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"Expected --{name.replace('_', '-')} >= 1. Received: {getattr(args, name)}")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size, args.features)).astype("float32")
    y = rng.integers(0, CLASSES, size=args.batch_size)
    rows = []
    for width in widths:
        built = {variant: (build(variant, width, args.features), []) for variant in ("plain", "gradtail")}
        times = time_steps(built, x, y, args.steps, args.repeats)
        row = {"hidden_units": width, "selected_parameters": selected_parameters(built["gradtail"][0]),
               "gradtail_over_plain": ratios(times, baseline="plain")["gradtail"],
               "per_repeat_ratios": [round(a / b, 3) for a, b in zip(times["gradtail"], times["plain"])],
               "ms_per_step_median": {name: round(statistics.median(v) * 1e3, 2) for name, v in times.items()}}
        rows.append(row)
        print(row, flush=True)
    import tensorflow as tf

    result = {
        "command": " ".join(["python -m benchmarks.gradtail_scale"] + (argv if argv is not None else sys.argv[1:])),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"TF {tf.__version__}, Keras {keras.__version__}, shared",
        "model": f"mlp({CLASSES}, ({args.features},), hidden_units=(w,))", "gradient_path": "dense (auto)",
        "batch_size": args.batch_size, "steps": args.steps, "repeats": args.repeats, "rows": rows,
        "note": "gradtail_over_plain: median over interleaved rounds of (GradTail step time / plain step time)",
    }
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
