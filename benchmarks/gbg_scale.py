"""Time of GBG's grouping and of the min-norm solve as the number of classes grows.

    python -m benchmarks.gbg_scale [--classes 100,1000,8142] [--dim 1024] [--groups 4]

For K classes, synthetic per-class gradient sketches (K x dim: 4 planted directions plus
noise, random magnitudes) stand in for `group_classes`' gradient pass (whose cost is one
pass over the data). Timed: `group_by_similarity` (cosine matrix + spectral clustering,
cluster_qr) into `--groups` groups; the in-graph min-norm solve ("pgd") for the G group
gradients of a ResNet-32-sized model (470k parameters: the per-step cost); and, for
comparison, the solve with one objective per class (G = K, the ungrouped MOO the paper
argues against), from the K x K Gram matrix. Writes benchmarks/results/scale_gbg.json.
"""

import argparse
import json
import os
import pathlib
import platform
import sys

import numpy as np
import tensorflow as tf
from sklearn.metrics import adjusted_rand_score

from benchmarks import _timing
from keras_longtail.gbg import group_by_similarity
from keras_longtail.gbg import _min_norm
from keras_longtail.ops import min_norm_weights

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gbg_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", default="100,1000,8142")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--max-per-class", type=int, default=2000,
                        help="skip the G = K solve above this many classes (1000 FISTA steps on a K x K Gram)")
    parser.add_argument("--output", default=str(RESULTS / "scale_gbg.json"))
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []

    group_gradients = tf.constant(rng.normal(size=(args.groups, 470_000)).astype("float32")
                                  + rng.normal(size=(1, 470_000)).astype("float32"))
    solve = tf.function(lambda g: min_norm_weights(g, normalization="loss+", losses=tf.ones([args.groups])))
    solve(group_gradients)  # trace
    _, step_solve = _timing.best_of(lambda: solve(group_gradients).numpy(), repeats=5)

    for num_classes in [int(k) for k in args.classes.split(",")]:
        centres = rng.normal(size=(args.groups, args.dim))
        truth = rng.integers(0, args.groups, num_classes)
        gradients = (centres[truth] + 1.5 * rng.normal(size=(num_classes, args.dim))) * rng.uniform(
            0.1, 10, (num_classes, 1))
        grouping, grouping_seconds = _timing.best_of(lambda: group_by_similarity(gradients, args.groups, seed=0,
                                                                       keep_similarity=False))
        per_class_seconds = None
        if num_classes <= args.max_per_class:
            unit = gradients / np.linalg.norm(gradients, axis=1, keepdims=True)
            gram = tf.constant(unit @ unit.T)
            per_class = tf.function(lambda m: _min_norm.solve_gram(m, None, "pgd", 1000, 1e-6))
            per_class(gram)
            _, per_class_seconds = _timing.best_of(lambda: per_class(gram).numpy())
        row = {"classes": num_classes, "dim": args.dim, "groups": args.groups,
               "grouping_seconds": round(grouping_seconds, 3),
               "adjusted_rand_index_vs_planted": round(adjusted_rand_score(truth, grouping.groups), 4),
               "min_norm_per_class_objectives_seconds": (None if per_class_seconds is None
                                                         else round(per_class_seconds, 4))}
        rows.append(row)
        print(row, flush=True)
    results = {
        "command": " ".join(["python -m benchmarks.gbg_scale"] + (argv if argv is not None else sys.argv[1:])),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, shared",
        "min_norm_group_solve_seconds": {"groups": args.groups, "parameters": 470_000,
                                          "seconds_including_gram": round(step_solve, 4)},
        "rows": rows,
    }
    pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.output).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
