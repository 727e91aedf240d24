"""Dual-phase phase II ablation on Fashion-MNIST-LT: one phase I, many phase IIs.

    python -m benchmarks.studies.dual_phase_phase_two [--variants default,lr0.01,...] [--phase-one-dir DIR]

Phase I (ResNet-32 on the 8 head classes of Fashion-MNIST-LT IF 100, `--phase-one-epochs` x
`--phase-one-steps` SGD steps at lr 0.1 with the LDAM-DRW schedule, decoupled WD 5e-3, batch 128,
crop + flip) runs once and is kept in `--phase-one-dir` (`DualPhaseTraining.save_phase_one`:
weights and memory bank), so a second call reuses it. Each variant then runs phase II from that
same state (`load_phase_one`) on D = X2 ∪ memory for `--phase-two-epochs` epochs of
ceil(|D| / 128) steps — the CLI's phase II — and records the test accuracy of every class after
every epoch: phase II is short and its test accuracy swings from epoch to epoch, so the last
epoch alone says little. Writes `results/dual_phase_phase_two.json`.
"""

import argparse
import json
import math
import os
import pathlib
import platform
import sys
import time

import keras
import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"

# name -> (phase-II peak learning rate, DualPhaseTraining keyword arguments)
VARIANTS = {
    "default": (0.1, {}),
    "lr0.01": (0.01, {}),
    "lr0.001": (0.001, {}),
    "bn-inference": (0.1, {"phase_two_batch_norm": "inference"}),
    "bn-inference-lr0.01": (0.01, {"phase_two_batch_norm": "inference"}),
    "bn-inference-lr0.01-lambda0": (0.01, {"phase_two_batch_norm": "inference", "retentive_weight": 0.0}),
    "memory60": (0.1, {"memory_size": 60}),
}


def _accuracy(model, test):
    labels, predictions = [], []
    for x, y in test.batch(1000):
        labels.append(y.numpy())
        predictions.append(np.argmax(model(x, training=False).numpy(), axis=-1))
    labels, predictions = np.concatenate(labels), np.concatenate(predictions)
    return [round(float(np.mean(predictions[labels == k] == k)) * 100, 1) for k in range(10)]


def main(argv=None):
    from keras_longtail import data, models, training
    from keras_longtail.recipes import ldam_schedule as _ldam_schedule
    from keras_longtail.recipes import training_pipeline as _training_pipeline

    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.dual_phase_phase_two",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    parser.add_argument("--phase-one-epochs", type=int, default=12)
    parser.add_argument("--phase-one-steps", type=int, default=40)
    parser.add_argument("--phase-two-epochs", type=int, default=12)
    parser.add_argument("--phase-one-dir", default="/tmp/keras_longtail_dual_phase_phase_one")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=str(RESULTS / "dual_phase_phase_two.json"))
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")

    loaded = data.load_fashion_mnist_lt(100, data_dir=args.data_dir)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def optimizer(peak, epochs, steps):
        return keras.optimizers.SGD(_ldam_schedule(peak, epochs, steps), momentum=0.9, weight_decay=5e-3)

    def dual_phase(options):
        keras.utils.set_random_seed(0)
        network = models.resnet32(10, input_shape=(28, 28, 1))
        return training.DualPhaseTraining(network, loaded.class_counts, **options)

    start = time.time()
    dual = dual_phase({})
    if not dual.load_phase_one(args.phase_one_dir):
        dual.phase_one_model.compile(optimizer(0.1, args.phase_one_epochs, args.phase_one_steps), ce)
        pipeline = _training_pipeline(dual.phase_one_data(loaded.train), sum(dual.phase_one_class_counts), 128,
                                      True, 0)
        dual.phase_one_model.fit(pipeline, epochs=args.phase_one_epochs, steps_per_epoch=args.phase_one_steps,
                                 verbose=2)
        dual.build_memory_bank(loaded.train)
        dual.save_phase_one(args.phase_one_dir)
    results = {"phase_one": {"accuracy_per_class": _accuracy(dual.phase_one_model, loaded.test),
                             "classes": [int(c) for c in dual.split.phase_one],
                             "epochs": args.phase_one_epochs, "steps_per_epoch": args.phase_one_steps}}
    results["phase_one"]["mean"] = round(float(np.mean(results["phase_one"]["accuracy_per_class"])), 1)
    print(f"phase I: {results['phase_one']['mean']} % {results['phase_one']['accuracy_per_class']}", flush=True)

    variants = {}
    for name in names:
        learning_rate, options = VARIANTS[name]
        dual = dual_phase(options)
        if "memory_size" in options:  # another memory bank: rebuild it on the same phase-I weights
            dual.phase_one_model.load_weights(os.path.join(args.phase_one_dir, "phase_one.weights.h5"))
            dual.build_memory_bank(loaded.train)
        elif not dual.load_phase_one(args.phase_one_dir):
            raise RuntimeError(f"phase I was not saved in {args.phase_one_dir}")
        phase_two = dual.build_phase_two_model()
        steps = math.ceil(dual.phase_two_size() / 128)
        phase_two.compile(optimizer(learning_rate, args.phase_two_epochs, steps), ce)
        history = []

        class Record(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                per_class = _accuracy(dual.model, loaded.test)
                history.append({"epoch": epoch + 1, "loss": round(float(logs["loss"]), 4), "per_class": per_class,
                                "mean": round(float(np.mean(per_class)), 1)})

        pipeline = _training_pipeline(dual.phase_two_data(loaded.train), dual.phase_two_size(), 128, True, 0)
        phase_two.fit(pipeline, epochs=args.phase_two_epochs, steps_per_epoch=steps, verbose=0, callbacks=[Record()])
        means = [h["mean"] for h in history]
        variants[name] = {"phase_two_learning_rate": learning_rate, "options": options, "steps_per_epoch": steps,
                          "phase_two_size": dual.phase_two_size(), "final": means[-1],
                          "mean_of_last_4_epochs": round(float(np.mean(means[-4:])), 1),
                          "min": min(means), "max": max(means), "epochs": history}
        print(f"{name}: final {means[-1]} %, last 4 epochs {variants[name]['mean_of_last_4_epochs']} %, "
              f"range {min(means)}-{max(means)}", flush=True)
    results.update({
        "command": " ".join(["python -m benchmarks.studies.dual_phase_phase_two"] + (argv if argv is not None else sys.argv[1:])),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "seconds": round(time.time() - start, 1), "variants": variants})
    output = pathlib.Path(args.output)
    if output.exists():  # keep the variants of earlier calls
        stored = json.loads(output.read_text())
        stored.get("variants", {}).update(variants)
        results["variants"] = stored["variants"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
