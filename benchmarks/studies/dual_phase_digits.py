"""Plain joint training vs asynchronous dual-phase training on digits-LT, at an equal step budget.

    python -m benchmarks.studies.dual_phase_digits            # writes benchmarks/results/dual_phase_digits.json

Joint: `keras_longtail.recipes.run_training("digits-lt")` — MLP (one hidden layer of 64 units), batch 32, Adam 0.05
with cosine decay, 40 epochs of ceil(n / 32) steps = 640 steps. Dual-phase: the same network, optimizer recipe and
batch size, 640 steps in total: phase II runs 40 epochs over D = X2 ∪ M (the paper's T for both phases; capped
at half the budget, which only binds for D = all data) and phase I gets the remaining steps over X1, as 40 epochs
of (640 − phase-II steps) // 40 steps on the repeated phase-I data; each phase has its own Adam + cosine decay.
Only the public API is used.
"""

import argparse
import json
import math
import pathlib
import platform
import time

import keras
import numpy as np

from keras_longtail import data
from keras_longtail import metrics
from keras_longtail import models
from keras_longtail.recipes import run_training
from keras_longtail.training import DualPhaseTraining

EPOCHS, BATCH, LEARNING_RATE = 40, 32, 0.05
PAPER_RETENTIVE = {"retentive_temperature": 1.0, "retentive_normalize": False, "retentive_reduction": "sum"}
VARIANTS = {
    # The defaults: cosine classifier s=16, m=0.5, K=2, λ=sqrt(C/C1), memory 10, D = X2 ∪ M, and L_dis on
    # unit-norm features with T = 0.01 and a batch mean (DualPhaseTraining's docstring says why).
    "dual_phase": {},
    # Eq. 6-8 as printed: raw features, T = 1, a sum over the batch.
    "dual_phase_paper": PAPER_RETENTIVE,
    "dual_phase_paper_T0.1": dict(PAPER_RETENTIVE, retentive_temperature=0.1),
    "dual_phase_all_data": {"phase_two_data": "all"},
    "dual_phase_no_retentive": {"retentive_weight": 0.0},
}
RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results" / "dual_phase_digits.json"


def _accuracy(class_counts, model, test):
    shot = metrics.ShotAccuracy(class_counts)
    for images, labels in test.batch(512):
        shot.update_state(labels, model(images, training=False))
    return {key.split("_", 1)[1]: round(100 * float(value), 2) for key, value in shot.result().items()}


def _optimizer(steps):
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps))


def run_dual_phase(seed, **options):
    keras.utils.set_random_seed(seed)
    loaded = data.load_digits_lt()
    total_steps = EPOCHS * math.ceil(loaded.num_train / BATCH)
    network = models.mlp(loaded.num_classes, (8, 8, 1), hidden_units=(64,))
    dual = DualPhaseTraining(network, loaded.class_counts, **options)
    # Phase II: T = 40 epochs over D, at most half the budget (D = all data would otherwise take it all).
    phase_two_per_epoch = min(math.ceil(dual.phase_two_size() / BATCH), total_steps // (2 * EPOCHS))
    phase_one_steps = (total_steps - EPOCHS * phase_two_per_epoch) // EPOCHS
    phase_two_steps = EPOCHS * phase_two_per_epoch
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    start = time.perf_counter()

    phase_one = dual.phase_one_data(loaded.train)
    phase_one = phase_one.shuffle(2048, seed=seed).repeat().batch(BATCH)
    dual.phase_one_model.compile(_optimizer(EPOCHS * phase_one_steps), cross_entropy)
    dual.phase_one_model.fit(phase_one, epochs=EPOCHS, steps_per_epoch=phase_one_steps, verbose=0)

    dual.build_memory_bank(loaded.train)
    model = dual.build_phase_two_model()
    model.compile(_optimizer(phase_two_steps), cross_entropy)
    phase_two = dual.phase_two_data(loaded.train).shuffle(2048, seed=seed).repeat().batch(BATCH)
    model.fit(phase_two, epochs=EPOCHS, steps_per_epoch=phase_two_per_epoch, verbose=0)
    seconds = time.perf_counter() - start
    return {
        "seed": seed,
        "threshold": len(dual.split.phase_one),
        "retentive_weight": round(dual.retentive_weight, 4),
        "steps": {"phase_one": EPOCHS * phase_one_steps, "phase_two": phase_two_steps, "joint": total_steps},
        "phase_two_examples": dual.phase_two_size(),
        "accuracy": _accuracy(loaded.class_counts, dual.model, loaded.test),
        "train_seconds": round(seconds, 1),
    }


def _summary(runs):
    """Mean and sample standard deviation (n - 1, as the suite tables) over the seeds."""
    keys = runs[0]["accuracy"].keys()
    return {key: {"mean": round(float(np.mean([r["accuracy"][key] for r in runs])), 2),
                  "std": round(float(np.std([r["accuracy"][key] for r in runs], ddof=1)), 2) if len(runs) > 1
                  else 0.0} for key in keys}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {"command": "python -m benchmarks.studies.dual_phase_digits", "machine": platform.machine(),
               "keras": keras.__version__, "budget": f"{EPOCHS} joint epochs of batch {BATCH} (equal steps)",
               "runs": {}}
    joint = []
    for seed in seeds:
        r = run_training("digits-lt", epochs=EPOCHS, batch_size=BATCH, seed=seed, verbose=0)
        joint.append({"seed": seed, "steps": r["epochs"] * r["steps_per_epoch"], "accuracy": r["accuracy"],
                      "train_seconds": r["train_seconds"]})
    results["runs"]["joint_ce"] = {"per_seed": joint, "summary": _summary(joint)}
    for name, options in VARIANTS.items():
        runs = [run_dual_phase(seed, **options) for seed in seeds]
        results["runs"][name] = {"options": options, "per_seed": runs, "summary": _summary(runs)}
    for name, run in results["runs"].items():
        print(f"{name:26s}", "  ".join(f"{k} {v['mean']:.1f}±{v['std']:.1f}" for k, v in run["summary"].items()))
    pathlib.Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
