"""GradTail's toy experiment (paper §4.1, App. B.1): plain cross-entropy vs GradTail on two Gaussians.

    python -m benchmarks.gradtail_toy            # 5 seeds, ~2 minutes on a 2-core CPU
    python -m benchmarks.gradtail_toy --seeds 0,1,2,3,4,5,6,7,8,9

Data: `keras_longtail.data.two_gaussians` (10,000 common points from N(0, I), 400 rare points from
N([2.2, 2.2], 0.5 I)), a fresh training draw per seed; evaluated on a balanced fresh draw (5,000 + 5,000
points), class-balanced accuracy = mean of the two per-class accuracies. Model: `keras_longtail.models.mlp`
(one hidden ReLU layer of 5 units, no batch norm). Optimizer as in the paper (SGD with Nesterov momentum
0.9, constant learning rate), but a shorter documented schedule: 3,000 steps of batch 128 at learning rate
0.01 (the paper: 10,000 steps at 1e-4, batch size not given). GradTail: all weights of the MLP (the default
selection, the paper's choice for the toy), pivot 0, decay 0.99, `GradTailSigmoid(max_weight=15,
sharpness=5)` (the paper's maximum weight 15). Both methods see the same initial weights and batches.

Writes `benchmarks/results/gradtail_toy.json` and `benchmarks/results/gradtail_toy.md`.
"""

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_longtail.data import two_gaussians
from keras_longtail.models import mlp
from keras_longtail.training import GradTailModel
from keras_longtail.training import GradTailSigmoid

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
SCHEDULE = {"steps": 3000, "batch_size": 128, "learning_rate": 0.01, "momentum": 0.9, "nesterov": True}
GRADTAIL = {"max_weight": 15.0, "sharpness": 5.0, "pivot": 0.0, "decay": 0.99}


def build(method, seed):
    """The toy MLP, plain (`"ce"`) or wrapped in GradTail (`"gradtail"`), compiled."""
    keras.utils.set_random_seed(seed)
    network = mlp(2, (2,), hidden_units=(5,))
    if method == "gradtail":
        network = GradTailModel.from_model(
            network, pivot=GRADTAIL["pivot"], decay=GRADTAIL["decay"],
            activation=GradTailSigmoid(GRADTAIL["max_weight"], GRADTAIL["sharpness"]))
    optimizer = keras.optimizers.SGD(SCHEDULE["learning_rate"], momentum=SCHEDULE["momentum"],
                                     nesterov=SCHEDULE["nesterov"])
    network.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return network


def train(method, seed, x, y, steps=None):
    """Trains one toy model; returns it and its fit history."""
    steps = steps or SCHEDULE["steps"]
    model = build(method, seed)
    data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat()
            .batch(SCHEDULE["batch_size"]))
    history = model.fit(data, steps_per_epoch=steps // 10, epochs=10, verbose=0)
    return model, history.history


def evaluate(model, x, y):
    predicted = model.predict(x, batch_size=4096, verbose=0).argmax(axis=1)
    per_class = [float(np.mean(predicted[y == c] == c)) for c in (0, 1)]
    return {"balanced_accuracy": float(np.mean(per_class)), "common_accuracy": per_class[0],
            "rare_accuracy": per_class[1]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    for seed in seeds:
        x, y = two_gaussians(seed=seed)
        x_test, y_test = two_gaussians(num_common=5000, num_rare=5000, seed=1000 + seed)
        for method in ("ce", "gradtail"):
            start = time.perf_counter()
            model, history = train(method, seed, x, y)
            run = {"method": method, "seed": seed, "seconds": round(time.perf_counter() - start, 1),
                   **evaluate(model, x_test, y_test)}
            if method == "gradtail":
                run.update({key: float(history[key][-1]) for key in
                            ("gradtail_mean_weight", "gradtail_upweighted", "gradtail_sigma")})
            runs.append(run)
            print(json.dumps(run), flush=True)
    summary = {}
    for method in ("ce", "gradtail"):
        values = [r["balanced_accuracy"] for r in runs if r["method"] == method]
        summary[method] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                           "rare_mean": statistics.mean(r["rare_accuracy"] for r in runs if r["method"] == method),
                           "common_mean": statistics.mean(r["common_accuracy"] for r in runs if r["method"] == method)}
    wins = sum(g["balanced_accuracy"] > c["balanced_accuracy"] for c, g in zip(runs[::2], runs[1::2]))
    result = {"command": "python -m benchmarks.gradtail_toy " + " ".join(argv or sys.argv[1:]),
              "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
                         f"TF {tf.__version__}, Keras {keras.__version__}",
              "schedule": SCHEDULE, "gradtail": GRADTAIL, "seeds": seeds, "runs": runs, "summary": summary,
              "gradtail_wins": f"{wins}/{len(seeds)}"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gradtail_toy.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# GradTail toy experiment (two Gaussians, 10,000 vs 400 points)", "",
             f"Command: `{result['command'].strip()}` ({result['machine']}).", "",
             f"MLP 2-5-2, SGD Nesterov 0.9, lr {SCHEDULE['learning_rate']}, {SCHEDULE['steps']} steps of batch "
             f"{SCHEDULE['batch_size']}; GradTail max weight {GRADTAIL['max_weight']:g}, sharpness "
             f"{GRADTAIL['sharpness']:g}, pivot {GRADTAIL['pivot']:g}, decay {GRADTAIL['decay']}; "
             f"balanced test draw of 10,000 points; seeds {seeds}.", "",
             "| Method | Class-balanced accuracy (%) | Common-class acc. (%) | Rare-class acc. (%) |",
             "|---|---|---|---|"]
    for method, label in (("ce", "Cross-entropy"), ("gradtail", "GradTail")):
        s = summary[method]
        lines.append(f"| {label} | {100 * s['mean']:.2f} ± {100 * s['std']:.2f} | {100 * s['common_mean']:.2f} | "
                     f"{100 * s['rare_mean']:.2f} |")
    lines += ["", f"GradTail beats cross-entropy on {wins} of {len(seeds)} seeds (mean ± sample std over seeds).", ""]
    (RESULTS / "gradtail_toy.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
