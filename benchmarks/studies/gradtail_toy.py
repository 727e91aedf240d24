"""GradTail's toy experiment (paper §4.1, Figs. 2–3, App. B.1): cross-entropy vs GradTail on two Gaussians.

    python -m benchmarks.studies.gradtail_toy                                   # the configurations of CONFIGS, 3 seeds
    python -m benchmarks.studies.gradtail_toy --configs paper_sum --seeds 0,1,2,3,4
    python -m benchmarks.studies.gradtail_toy --configs ours --steps 10000 --max-weight 3   # override one setting

Data: `keras_longtail.data.two_gaussians` (10,000 common points from N(0, I), 400 rare points from
N([2.2, 2.2], 0.5 I)), a fresh training draw per seed; evaluated on a balanced fresh draw (5,000 + 5,000
points): class-balanced accuracy = mean of the two per-class accuracies. Model: `keras_longtail.models.mlp`
(one hidden ReLU layer of 5 units, no batch norm). Optimizer as in the paper: SGD with look-ahead (Nesterov)
momentum 0.9 at a constant learning rate. GradTail: all weights of the MLP (the default selection, the paper's
choice for the toy), `GradTailSigmoid(max_weight=15, sharpness=5)` (the paper's maximum weight 15), pivot 0,
decay 0.99. Both methods see the same initial weights and batches.

Configurations (`CONFIGS`); the paper gives 10,000 steps at learning rate 1e-4, not the batch size, and its
Algorithm 1 returns the *sum* Σ q·L over the batch while Keras (and `GradTailModel`) minimize the batch mean:
with SGD + momentum, summing over a batch of B is the mean at B times the learning rate.

- `ours`: 3,000 steps of batch 128 at learning rate 0.01 (mean loss): this benchmark's former schedule.
- `paper`: App. B.1 read literally with a mean loss: 10,000 steps of batch 128 at 1e-4.
- `paper_sum`: App. B.1 with Algorithm 1's summed loss: 10,000 steps of batch 128 at 128 × 1e-4 = 0.0128.

Measurements (per run; the Bayes boundary is where the two class densities are equal, i.e. equal priors:
the circle |x − (4.4, 4.4)|² = 2·|m|² + 2·ln 2 around the rare mean m, which crosses the diagonal x1 = x2 at
t* = 1.18):

- `balanced_accuracy` (and per class) on the balanced test draw; `bayes_balanced_accuracy`: the Bayes rule's.
- `diagonal_crossing`: where the learned boundary crosses the diagonal (x1 = x2 = t, the first t from the
  common mean outward where the rare class wins; `null` if it never does in [0, 6]); `diagonal_gap` = its
  distance t − t* times √2, in input units (> 0: pushed into the rare class, as cross-entropy does).
- The paper's Fig. 3 split of the training set by θ = cos(∇L(x), w̃): "rare" |θ| ≤ 0.07, "hard" θ < −0.07,
  "common" θ > 0.07, with θ per point aggregated over the run (`agg`: the mean of θ at `--score-points`
  evenly spaced checkpoints over the whole run, after the warm-up) and at the end only (`end`). For the
  "rare" points: how many of each class, and their mean signed distance to the Bayes boundary and to the
  learned boundary (> 0 on the rare-class side; the learned boundary from a 0.02-spaced grid on
  [−5, 8]²) and the mean absolute distance to each.

Writes `benchmarks/results/gradtail_toy.json` and `benchmarks/results/gradtail_toy.md`.
"""

import argparse
import json
import math
import pathlib
import platform
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from scipy.spatial import cKDTree

from keras_longtail.data import two_gaussians
from keras_longtail.gradtail import GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT
from keras_longtail.models import mlp
from keras_longtail.training import GradTailModel
from keras_longtail.training import GradTailSigmoid

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"
CONFIGS = {
    "ours": {"steps": 3000, "batch_size": 128, "learning_rate": 0.01},
    "paper": {"steps": 10000, "batch_size": 128, "learning_rate": 1e-4},
    "paper_sum": {"steps": 10000, "batch_size": 128, "learning_rate": 128 * 1e-4},
}
OPTIMIZER = {"momentum": 0.9, "nesterov": True}
GRADTAIL = {"max_weight": GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT, "sharpness": 5.0, "pivot": 0.0, "decay": 0.99}
RARE_MEAN, RARE_VARIANCE, BAND = np.array([2.2, 2.2]), 0.5, 0.07
BAYES_CENTER = 2.0 * RARE_MEAN  # only for RARE_VARIANCE = 0.5: |x|²/2 − |x − m|² + ln 2 = 0
BAYES_RADIUS = math.sqrt(2.0 * float(RARE_MEAN @ RARE_MEAN) + 2.0 * math.log(2.0))
BAYES_DIAGONAL = float(BAYES_CENTER[0] - BAYES_RADIUS / math.sqrt(2.0))


def bayes_signed_distance(points):
    """Signed distance to the Bayes boundary (> 0 inside the circle, the rare-class side)."""
    return BAYES_RADIUS - np.linalg.norm(points - BAYES_CENTER, axis=1)


def build(method, seed, config, gradtail, zero_init=False):
    """The toy MLP, plain (`"ce"`) or wrapped in GradTail (`"gradtail"`), compiled.

    `zero_init`: Algorithm 1's zero-initialised EMAs instead of `GradTailModel`'s warm-up (w̃ seeded with
    the first batch mean, σ with the second σ_x): the step counter starts past the warm-up, so w̃ and σ
    grow from 0 as λ·0 + (1 − λ)·batch value (q = 1 on the first step, where w̃ = 0 and so θ = 0).
    """
    keras.utils.set_random_seed(seed)
    network = mlp(2, (2,), hidden_units=(5,))
    if method == "gradtail":
        network = GradTailModel.from_model(
            network, pivot=gradtail["pivot"], decay=gradtail["decay"],
            activation=GradTailSigmoid(gradtail["max_weight"], gradtail["sharpness"]))
    optimizer = keras.optimizers.SGD(config["learning_rate"], **OPTIMIZER)
    network.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if method == "gradtail" and zero_init:
        network.gradtail_step.assign(2.0)
    return network


class ScoreDuringTraining(keras.callbacks.Callback):
    """θ for the whole training set at `points` evenly spaced steps (after the 2-step warm-up) and at the end."""

    def __init__(self, x, y, steps, points):
        super().__init__()
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.at = set(np.unique(np.linspace(2, steps, points).round().astype(int)).tolist())
        self.thetas, self.step, self.score = [], 0, None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step in self.at:
            if self.score is None:
                self.score = tf.function(lambda x, y: self.model.gradtail_batch_scores(x, y)[0])
            self.thetas.append(self.score(self.x, self.y).numpy())


def train(method, seed, x, y, config, gradtail, score_points):
    """Trains one toy model; returns it, its fit history and (GradTail) the θ checkpoints."""
    model = build(method, seed, config, gradtail, zero_init=gradtail.get("zero_init", False))
    data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat()
            .batch(config["batch_size"]))
    callbacks = [ScoreDuringTraining(x, y, config["steps"], score_points)] if method == "gradtail" else []
    history = model.fit(data, steps_per_epoch=config["steps"] // 10, epochs=10, verbose=0, callbacks=callbacks)
    return model, history.history, (callbacks[0].thetas if callbacks else None)


def _logit_margin(model, points):
    logits = model.predict(points.astype(np.float32), batch_size=65536, verbose=0)
    return logits[:, 1] - logits[:, 0]


def learned_boundary(model, spacing=0.02, low=-5.0, high=8.0):
    """Points on the learned decision boundary (midpoints of grid neighbours with different predictions)."""
    axis = np.arange(low, high + spacing / 2, spacing)
    gx, gy = np.meshgrid(axis, axis)
    rare = (_logit_margin(model, np.stack([gx.ravel(), gy.ravel()], 1)) > 0).reshape(gx.shape)
    points = []
    for shift in ((0, 1), (1, 0)):
        a, b = rare[:rare.shape[0] - shift[0], :rare.shape[1] - shift[1]], rare[shift[0]:, shift[1]:]
        rows, cols = np.nonzero(a != b)
        points.append(np.stack([axis[cols] + spacing * shift[1] / 2, axis[rows] + spacing * shift[0] / 2], 1))
    return np.concatenate(points)


def geometry(model, x_test, y_test):
    """Accuracies and where the learned boundary crosses the diagonal."""
    predicted = (_logit_margin(model, x_test) > 0).astype(int)
    per_class = [float(np.mean(predicted[y_test == c] == c)) for c in (0, 1)]
    t = np.arange(0.0, 6.0, 0.001)
    rare = _logit_margin(model, np.stack([t, t], 1)) > 0
    crossing = float(t[np.argmax(rare)]) if rare.any() else None
    return {"balanced_accuracy": float(np.mean(per_class)), "common_accuracy": per_class[0],
            "rare_accuracy": per_class[1], "diagonal_crossing": crossing,
            "diagonal_gap": None if crossing is None else round((crossing - BAYES_DIAGONAL) * math.sqrt(2), 4)}


def split_statistics(model, theta, x, y):
    """The Fig. 3 split by θ, and where its "rare" points lie relative to both boundaries."""
    boundary = learned_boundary(model)
    rare = np.abs(theta) <= BAND
    out = {"common_class_rare": int(np.sum(rare & (y == 0))), "rare_class_rare": int(np.sum(rare & (y == 1))),
           "rare_class_hard": int(np.sum((theta < -BAND) & (y == 1))),
           "rare_class_common": int(np.sum((theta > BAND) & (y == 1))),
           "common_class_hard": int(np.sum((theta < -BAND) & (y == 0)))}
    if rare.any() and len(boundary):
        points = x[rare]
        to_bayes = bayes_signed_distance(points)
        side = np.where(_logit_margin(model, points) > 0, 1.0, -1.0)
        to_learned = side * cKDTree(boundary).query(points)[0]
        out.update({"rare_to_bayes_mean": float(to_bayes.mean()), "rare_to_bayes_abs": float(np.abs(to_bayes).mean()),
                    "rare_to_learned_mean": float(to_learned.mean()),
                    "rare_to_learned_abs": float(np.abs(to_learned).mean())})
    return out


def run_config(name, config, gradtail, seeds, score_points, methods=("ce", "gradtail")):
    runs = []
    for seed in seeds:
        x, y = two_gaussians(seed=seed)
        x_test, y_test = two_gaussians(num_common=5000, num_rare=5000, seed=1000 + seed)
        bayes = (bayes_signed_distance(x_test) > 0).astype(int)
        bayes_balanced = float(np.mean([np.mean(bayes[y_test == c] == c) for c in (0, 1)]))
        for method in methods:
            start = time.perf_counter()
            model, history, thetas = train(method, seed, x, y, config, gradtail, score_points)
            run = {"config": name, "method": method, "seed": seed, "seconds": round(time.perf_counter() - start, 1),
                   "bayes_balanced_accuracy": bayes_balanced, **geometry(model, x_test, y_test)}
            if method == "gradtail":
                run.update({key: float(history[key][-1]) for key in
                            ("gradtail_mean_weight", "gradtail_upweighted", "gradtail_sigma")})
                run["split_agg"] = split_statistics(model, np.mean(thetas, axis=0), x, y)
                run["split_end"] = split_statistics(model, thetas[-1], x, y)
            runs.append(run)
            print(json.dumps(run), flush=True)
    return runs


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def summarize(runs):
    summary = {}
    for method in ("ce", "gradtail"):
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        values = [r["balanced_accuracy"] for r in mine]
        entry = {"balanced_mean": statistics.mean(values),
                 "balanced_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                 "common_mean": _mean([r["common_accuracy"] for r in mine]),
                 "rare_mean": _mean([r["rare_accuracy"] for r in mine]),
                 "diagonal_gap_mean": _mean([r["diagonal_gap"] for r in mine]),
                 "no_crossing": sum(r["diagonal_crossing"] is None for r in mine)}
        if method == "gradtail":
            for which in ("split_agg", "split_end"):
                keys = sorted({k for r in mine for k in r[which]})
                entry[which] = {k: _mean([r[which].get(k) for r in mine]) for k in keys}
        summary[method] = entry
    return summary


def _fmt(value, scale=1.0, digits=2):
    return "–" if value is None else f"{scale * value:.{digits}f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, help="override every configuration's number of steps")
    parser.add_argument("--batch-size", type=int, help="override every configuration's batch size")
    parser.add_argument("--learning-rate", type=float, help="override every configuration's learning rate")
    parser.add_argument("--max-weight", type=float, default=GRADTAIL["max_weight"])
    parser.add_argument("--sharpness", type=float, default=GRADTAIL["sharpness"])
    parser.add_argument("--pivot", type=float, default=GRADTAIL["pivot"])
    parser.add_argument("--decay", type=float, default=GRADTAIL["decay"])
    parser.add_argument("--zero-init", action="store_true",
                        help="Algorithm 1's zero-initialised EMAs instead of GradTailModel's warm-up")
    parser.add_argument("--methods", default="ce,gradtail")
    parser.add_argument("--score-points", type=int, default=100, help="θ checkpoints aggregated over the run")
    parser.add_argument("--output", default="gradtail_toy", help="results file stem under benchmarks/results")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    gradtail = {"max_weight": args.max_weight, "sharpness": args.sharpness, "pivot": args.pivot,
                "decay": args.decay, "zero_init": args.zero_init}
    methods = tuple(args.methods.split(","))
    configs = {}
    for name in args.configs.split(","):
        if name not in CONFIGS:
            raise ValueError(f"Expected --configs from {sorted(CONFIGS)}. Received: {name!r}")
        config = dict(CONFIGS[name])
        for key in ("steps", "batch_size", "learning_rate"):
            if getattr(args, key) is not None:
                config[key] = getattr(args, key)
        configs[name] = config
    runs, summaries = [], {}
    for name, config in configs.items():
        mine = run_config(name, config, gradtail, seeds, args.score_points, methods)
        runs += mine
        summaries[name] = summarize(mine)
    command = "python -m benchmarks.studies.gradtail_toy " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"command": command.strip(),
              "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}, "
                         f"TF {tf.__version__}, Keras {keras.__version__}",
              "configs": configs, "optimizer": OPTIMIZER, "gradtail": gradtail, "seeds": seeds,
              "score_points": args.score_points, "bayes_diagonal_crossing": BAYES_DIAGONAL,
              "summary": summaries, "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# GradTail toy experiment (two Gaussians, 10,000 vs 400 points; paper §4.1)", "",
             f"Command: `{result['command']}` ({result['machine']}).", "",
             "MLP 2-5-2, SGD Nesterov 0.9 at a constant learning rate; "
             f"GradTail max weight {gradtail['max_weight']:g}, "
             f"sharpness {gradtail['sharpness']:g}, pivot {gradtail['pivot']:g}, decay {gradtail['decay']}"
             f"{', zero-initialised EMAs (no warm-up)' if gradtail['zero_init'] else ''}; "
             f"balanced test draw of 10,000 points; seeds {seeds}; means over seeds. The Bayes boundary crosses "
             f"the diagonal at t* = {BAYES_DIAGONAL:.3f}; its class-balanced accuracy on the test draws is "
             f"{100 * statistics.mean(r['bayes_balanced_accuracy'] for r in runs):.2f} %.", "",
             "| config | steps × batch, lr | method | balanced acc. (%) | common / rare acc. (%) | "
             "diagonal gap to Bayes | no crossing |",
             "|---|---|---|---|---|---|---|"]
    for name, config in configs.items():
        for method, label in (("ce", "CE"), ("gradtail", "GradTail")):
            if method not in summaries[name]:
                continue
            s = summaries[name][method]
            schedule = f"{config['steps']} × {config['batch_size']}, {config['learning_rate']:g}"
            lines.append(f"| {name} | {schedule} | {label} | "
                         f"{_fmt(s['balanced_mean'], 100)} ± {_fmt(s['balanced_std'], 100)} | "
                         f"{_fmt(s['common_mean'], 100, 1)} / {_fmt(s['rare_mean'], 100, 1)} | "
                         f"{_fmt(s['diagonal_gap_mean'])} | {s['no_crossing']}/{len(seeds)} |")
    lines += ["", "Diagonal gap: distance (input units) from the Bayes boundary to the learned one along x1 = x2, "
              "> 0 when pushed into the rare class (mean over the seeds that cross).", "",
              "Fig. 3 split of the GradTail training set (|θ| ≤ 0.07 is \"rare\"), θ aggregated over the run "
              "(agg) or at the end (end); counts are means over seeds; distances of the \"rare\" points, > 0 on "
              "the rare-class side:", "",
              "| config | θ | rare: common-class | rare: rare-class | rare-class hard / common | "
              "mean signed dist. to Bayes (abs) | to learned (abs) |", "|---|---|---|---|---|---|---|"]
    for name in configs:
        if "gradtail" not in summaries[name]:
            continue
        for which in ("split_agg", "split_end"):
            s = summaries[name]["gradtail"][which]
            lines.append(f"| {name} | {which[6:]} | {_fmt(s.get('common_class_rare'), 1, 0)} | "
                         f"{_fmt(s.get('rare_class_rare'), 1, 0)} | {_fmt(s.get('rare_class_hard'), 1, 0)} / "
                         f"{_fmt(s.get('rare_class_common'), 1, 0)} | {_fmt(s.get('rare_to_bayes_mean'))} "
                         f"({_fmt(s.get('rare_to_bayes_abs'))}) | {_fmt(s.get('rare_to_learned_mean'))} "
                         f"({_fmt(s.get('rare_to_learned_abs'))}) |")
    lines.append("")
    (RESULTS / f"{args.output}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
