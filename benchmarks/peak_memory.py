"""Peak memory of each method's training on ResNet-32 (peak RSS, TF CPU-allocator peak) vs a plain `fit`.

    python -m benchmarks.peak_memory [--steps 3] [--batch-size 128] [--methods ce,gala,...]

Each method runs in a fresh subprocess (`python -m benchmarks.peak_memory --child METHOD`), so that the
peaks of different methods do not mix: it builds and compiles ResNet-32 (10 classes, CIFAR shapes) the way
the overhead benchmarks build it (the shared builders of `benchmarks._methods`, with the optimizer of
`benchmarks.overhead` for `ce` and `gala`, of `benchmarks.gradtail_overhead` for GradTail and of
`benchmarks.gbg_overhead` for GBG), then runs one warm-up step (the tracing) and `--steps`
steps of `fit` on one fixed random batch with a CIFAR-10-LT (IF 100) label profile in which every class is
present (`benchmarks._methods.long_tailed_batch`). The child reports the process peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`, KiB on Linux) after importing TensorFlow, after building and
compiling (before any step), after the warm-up step and after the steps, and the current RSS at the end.
Peak RSS is monotonic, so "after the steps" is the peak of the whole run, tracing included; the figures
that matter are that peak and its difference to (and ratio over) the plain-CE child, and the increase
during training (peak after the steps minus peak after building).

Methods:

- `ce`: plain Keras `fit` with sparse softmax cross-entropy;
- `gala`: `GALALoss` + the `GALAAccumulator` callback (paper accumulation);
- `gradtail-classifier`: `GradTailModel.from_model` on the classifier (Dense path);
- `gradtail-last-two`: GradTail's default selection (last 3x3 convolution and classifier, analytic path);
- `gbg-exact`, `gbg-exact-solve4` (`solve_every=4`: one solve, then three reuses), `gbg-representation`:
  `GBGModel.from_model` with 4 contiguous groups;
- `async-phase-two`: the phase-II model of `DualPhaseTraining` (built as `keras_longtail.recipes` does for
  method "async", without real phase-I training: the memory bank is fitted on a small synthetic data set
  of 16 images per class; the frozen phase-I feature copy is part of the model).

Second figure: TensorFlow's own CPU allocator statistics. Although `tf.config.experimental.get_memory_info`
is documented for GPUs, in TF 2.21 `get_memory_info("CPU:0")` works on the CPU when TensorFlow's CPU allocator
is its BFC allocator, which TensorFlow picks by default only where oneDNN is on by default (e.g. Intel CPUs with
AVX-512); elsewhere (an AVX2-only AMD EPYC, for one) it raises "Allocator stats not available for device
'CPU:0'". The children therefore run with `TF_CPU_ALLOCATOR_USE_BFC=true` on every machine (unless the caller's
environment sets it), so that the figures exist and mean the same everywhere. It returns
`{"current": 0, "peak": 0}` until TensorFlow allocates, and then tracks the tensors its CPU allocator hands
out, eager and inside `tf.function` (a chain of two 4096² matmuls shows the expected 192 MiB peak), and
`reset_memory_stats("CPU:0")` resets the peak. The child resets it after building and after the warm-up
step and reports (`tf_allocator_mib`) the allocator peak of the warm-up step, of the later steps, and the
larger of the two (`peak_training`; for `gbg-exact-solve4` the warm-up step is a solve step and the later
ones reuse alpha): the live tensors of a train step (activations, gradients, per-example quantities) and
the variables (about 4 MiB for ResNet-32 with momentum), without the TensorFlow runtime, the traced graphs
and Python objects. Its "current" figure is not reliable (0 in some children that hold variables). Memory
allocated outside TensorFlow's allocator (e.g. oneDNN scratch buffers) shows only in RSS.

RSS includes the TensorFlow runtime itself (about 600 MiB here, `peak_mib_after_import`), the traced graphs
and what the C allocator keeps after tracing, so ratios of whole-process peaks understate the difference
between methods' tensors and deltas mix in graph size: read both figures. RSS varies by some MiB between
runs (allocator, thread pools).

Writes `benchmarks/results/peak_memory.json` (or `--output`) and prints a Markdown table.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("ce", "gala", "gradtail-classifier", "gradtail-last-two", "gbg-exact", "gbg-exact-solve4",
           "gbg-representation", "async-phase-two")
CLASSES = 10
GROUPS = 4
SOLVE_EVERY = 4
RESULT_PREFIX = "PEAK_MEMORY_RESULT "


def _peak_mib():
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def _current_mib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def build(method, grouping):
    """(compiled model, fit callbacks) for `method`, built by the shared cost-benchmark builders
    (`benchmarks._methods`) with the optimizer each step-time benchmark uses for it."""
    import keras

    from benchmarks import _methods
    from keras_longtail.models import resnet32

    if method not in METHODS:
        raise ValueError(f"Expected `method` in {list(METHODS)}. Received: method={method!r}")
    if method == "async-phase-two":
        return _methods.async_phase_two(CLASSES), []
    if method in ("ce", "gala"):  # as `benchmarks.overhead` builds them
        loss, callbacks = _methods.loss_and_callbacks(method, CLASSES)
        model = resnet32(CLASSES)
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), loss=loss, jit_compile=False)
        return model, callbacks
    # as `benchmarks.gradtail_overhead` (SGD 0.01) and `benchmarks.gbg_overhead` (SGD 0.1) build them
    model = _methods.wrap(method, resnet32(CLASSES), grouping, solve_every=SOLVE_EVERY)
    model.compile(keras.optimizers.SGD(0.1 if method.startswith("gbg-") else 0.01, momentum=0.9),
                  _methods.cross_entropy())
    return model, []


def _allocator(tf, reset=False):
    """TensorFlow's CPU allocator statistics in MiB ({"current", "peak"}), optionally reset after reading."""
    try:
        info = tf.config.experimental.get_memory_info("CPU:0")
    except ValueError as error:
        raise RuntimeError(
            "Expected TensorFlow's CPU allocator to keep statistics (a BFC allocator, "
            "TF_CPU_ALLOCATOR_USE_BFC=true, which `benchmarks.peak_memory` sets for its children unless the "
            f"environment sets it). Received: TF_CPU_ALLOCATOR_USE_BFC="
            f"{os.environ.get('TF_CPU_ALLOCATOR_USE_BFC')!r} ({error})") from error
    if reset:
        tf.config.experimental.reset_memory_stats("CPU:0")
    return {key: round(value / 2**20, 1) for key, value in info.items()}


def run_child(method, steps, batch_size):
    """Builds `method`, trains it and returns its memory figures (MiB); runs in the child process."""
    import keras
    import tensorflow as tf

    from benchmarks import _methods

    after_import = _peak_mib()
    images, labels, grouping = _methods.long_tailed_batch(batch_size, CLASSES, GROUPS)
    keras.utils.set_random_seed(0)
    model, callbacks = build(method, grouping)
    after_build = _peak_mib()
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    allocator_build = _allocator(tf, reset=True)
    model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)  # tracing
    after_warmup = _peak_mib()
    allocator_warmup = _allocator(tf, reset=True)
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
    after_steps = _peak_mib()
    allocator_steps = _allocator(tf)
    return {"peak_mib_after_import": after_import, "peak_mib_after_build": after_build,
            "peak_mib_after_warmup": after_warmup, "peak_mib_after_steps": after_steps,
            "training_increase_mib": round(after_steps - after_build, 1),
            "current_rss_mib_at_end": _current_mib(),
            "tf_allocator_mib": {"current_after_build": allocator_build["current"],
                                 "peak_warmup_step": allocator_warmup["peak"],
                                 "peak_steps": allocator_steps["peak"],
                                 "peak_training": max(allocator_warmup["peak"], allocator_steps["peak"]),
                                 "current_at_end": allocator_steps["current"]}}


def _child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")  # allocator statistics on every CPU (module docstring)
    return env


def measure(method, steps, batch_size):
    """Runs one child for `method`; its figures, or {"error": ...} if it failed."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.peak_memory", "--child", method, "--steps", str(steps),
         "--batch-size", str(batch_size)],
        cwd=ROOT, env=_child_env(), capture_output=True, text=True, check=False)
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        return {"error": f"child exited with {completed.returncode}: {completed.stderr[-2000:]}"}
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def table(results):
    rows = ["| method | peak RSS after build (MiB) | peak RSS in training (MiB) | Δ vs CE (MiB) | ratio vs CE "
            "| TF allocator peak in training (MiB) | ratio vs CE |", "|---|---|---|---|---|---|---|"]
    for name, entry in results.items():
        if "error" in entry:
            rows.append(f"| {name} | failed | | | | | |")
            continue
        rows.append(f"| {name} | {entry['peak_mib_after_build']:.0f} | {entry['peak_mib_after_steps']:.0f} | "
                    f"{entry['delta_vs_ce_mib']:+.0f} | {entry['ratio_vs_ce']:.2f}× | "
                    f"{entry['tf_allocator_mib']['peak_training']:.0f} | "
                    f"{entry['tf_allocator_peak_ratio_vs_ce']:.2f}× |")
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peak_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="train steps after the warm-up step")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {list(METHODS)} (ce, the baseline, always runs)")
    parser.add_argument("--output", default=str(RESULTS / "peak_memory.json"))
    parser.add_argument("--child", metavar="METHOD", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"Expected --steps >= 1. Received: --steps {args.steps}")
    if args.batch_size < CLASSES:
        parser.error(f"Expected --batch-size >= {CLASSES} (every class in the batch). "
                     f"Received: --batch-size {args.batch_size}")
    if args.child is not None:
        if args.child not in METHODS:
            parser.error(f"Expected --child in {list(METHODS)}. Received: --child {args.child!r}")
        print(RESULT_PREFIX + json.dumps(run_child(args.child, args.steps, args.batch_size)), flush=True)
        return 0
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"Expected --methods from {list(METHODS)}. Received unknown: {unknown}")
    methods = ["ce"] + [m for m in methods if m != "ce"]
    results = {}
    for method in methods:
        results[method] = measure(method, args.steps, args.batch_size)
        print(f"{method}: {results[method]}", flush=True)
    if "error" in results["ce"]:
        raise RuntimeError(f"The plain-CE baseline child failed: {results['ce']['error']}")
    base = results["ce"]
    for entry in results.values():
        if "error" not in entry:
            entry["delta_vs_ce_mib"] = round(entry["peak_mib_after_steps"] - base["peak_mib_after_steps"], 1)
            entry["ratio_vs_ce"] = round(entry["peak_mib_after_steps"] / base["peak_mib_after_steps"], 3)
            entry["training_increase_vs_ce_mib"] = round(
                entry["training_increase_mib"] - base["training_increase_mib"], 1)
            entry["tf_allocator_peak_ratio_vs_ce"] = round(
                entry["tf_allocator_mib"]["peak_training"] / base["tf_allocator_mib"]["peak_training"], 3)
    import tensorflow as tf  # after the children: the parent's own memory is not measured
    import keras

    output = {
        "command": " ".join(["python -m benchmarks.peak_memory"] + (argv if argv is not None else sys.argv[1:])),
        "machine": f"{platform.machine()}, {platform.system()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, TF {tf.__version__}, Keras {keras.__version__}, shared",
        "model": "resnet32", "classes": CLASSES, "batch_size": args.batch_size, "warmup_steps": 1,
        "steps": args.steps, "gbg_groups": GROUPS, "gbg_solve_every": SOLVE_EVERY,
        "tf_cpu_allocator_use_bfc": _child_env()["TF_CPU_ALLOCATOR_USE_BFC"],
        "methods": results,
        "note": "Process peak RSS (ru_maxrss) of a fresh child per method, MiB; delta/ratio vs ce use the peak "
                "after the steps; training_increase_mib = peak after the steps - peak after building. "
                "tf_allocator_mib: TensorFlow's CPU allocator (tf.config.experimental.get_memory_info('CPU:0'), "
                "reset after building and after the warm-up step): peak of the tensors of the warm-up step and "
                "of the later steps, peak_training the larger (gbg-exact-solve4: the warm-up step solves, the later "
                "steps reuse alpha); tf_allocator_peak_ratio_vs_ce uses peak_training.",
    }
    path = pathlib.Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(output, indent=2) + "\n")
    print(table(results))
    print(f"wrote {path}")
    return 1 if any("error" in entry for entry in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
