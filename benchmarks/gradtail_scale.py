"""Step time of GradTail (default gradient path) over a plain Keras step as the selected layers grow.

    python -m benchmarks.gradtail_scale [--widths 64,256,1024,2048] [--features 512] [--steps 100] [--repeats 7]

For each hidden width w, an MLP classifier `keras_longtail.models.mlp(10, (features,), hidden_units=(w,))`
on a fixed random batch (128 × `--features`, 10 classes), SGD with momentum, trained with Keras' own step
(`plain`) and as `GradTailModel.from_model(...)` with the default selection (the last two layers with a
kernel: the hidden layer and the classifier, features·w + w + 10·w + 10 selected parameters) on the default
`"auto"` path, which resolves to `"dense"` here (per-example statistics from the layer inputs and output
gradients; the per-example gradients are never materialized). The two are timed interleaved
(`--repeats` rounds of `--steps` `fit` steps each, after a two-step warm-up, as `benchmarks.overhead`
does) on two clocks: wall time (`time.perf_counter`) and the process's CPU time (`time.process_time`, all
threads), which is less sensitive to other processes on a shared machine (a round that waits for the CPU
costs wall time, not CPU time). Reported per width: the median over rounds of the per-round ratio, on
each clock, and the ratio of the fastest rounds (wall). A step here takes milliseconds, so `fit`'s own
per-step cost is part of both and rounds must be long (`--steps`). Only ratios are meant to be read;
median milliseconds per step are recorded for scale, with the load average before and after.

Writes `benchmarks/results/scale_gradtail.json` (or `--output`); `python -m benchmarks.studies.plot_scale` plots it.
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

from benchmarks import _timing

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


def time_rounds(models, x, y, steps, repeats):
    """Interleaved rounds: ({name: [wall s/step per round]}, {name: [CPU s/step per round]})."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(2)
    for model in models.values():  # tracing
        model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    fits = {name: (lambda model=model: model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0))
            for name, model in models.items()}
    return _timing.interleaved(fits, repeats, steps_per_call=steps, cpu=True)


def _median_ratio(times):
    return round(_timing.median_of_ratios(times, "gradtail", "plain"), 3)


def selected_parameters(model):
    return int(sum(np.prod(v.shape) for v in model.gradtail_variables))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gradtail_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", default="64,256,1024,2048")
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
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
    load_before = [round(v, 2) for v in os.getloadavg()]
    for width in widths:
        built = {variant: build(variant, width, args.features) for variant in ("plain", "gradtail")}
        times, cpu = time_rounds(built, x, y, args.steps, args.repeats)
        row = {"hidden_units": width, "selected_parameters": selected_parameters(built["gradtail"]),
               "gradtail_over_plain": _median_ratio(times),
               "gradtail_over_plain_cpu_time": _median_ratio(cpu),
               "ratio_of_min_times": round(min(times["gradtail"]) / min(times["plain"]), 3),
               "per_repeat_ratios": _timing.per_round_ratios(times, "gradtail", "plain"),
               "per_repeat_ratios_cpu_time": _timing.per_round_ratios(cpu, "gradtail", "plain"),
               "ms_per_step_median": {name: round(statistics.median(v) * 1e3, 2) for name, v in times.items()},
               "cpu_ms_per_step_median": {name: round(statistics.median(v) * 1e3, 2) for name, v in cpu.items()}}
        rows.append(row)
        print(row, flush=True)
    import tensorflow as tf

    result = {
        "command": " ".join(["python -m benchmarks.gradtail_scale"] + (argv if argv is not None else sys.argv[1:])),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"TF {tf.__version__}, Keras {keras.__version__}, shared",
        "model": f"mlp({CLASSES}, ({args.features},), hidden_units=(w,))", "gradient_path": "dense (auto)",
        "batch_size": args.batch_size, "steps": args.steps, "repeats": args.repeats,
        "load_average_1_5_15_min": {"before": load_before, "after": [round(v, 2) for v in os.getloadavg()]},
        "rows": rows,
        "note": "gradtail_over_plain(_cpu_time): median over interleaved rounds of (GradTail step time / plain "
                "step time), wall (CPU) clock; ratio_of_min_times: fastest GradTail round / fastest plain round "
                "(wall)",
    }
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
