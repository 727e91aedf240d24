"""Where GBG's min-norm direction points, on real long-tailed batches (ResNet-32, seed 0).

    python -m benchmarks.studies.gbg_diagnostics [--dataset fashion-mnist-lt|cifar10-lt] [--data-dir DIR]
        [--batches 2] [--ce-steps 60]

Groups the classes as `--method gbg` does (`group_classes`, 4 groups, on the initialized
network), then on `--batches` training batches of 128 computes the group-mean losses L_g
and their gradients over (a) all trainable weights (what mode="exact" and the paper use),
(b) the classifier only (mode="representation"'s surrogate) and (c) the backbone only (the
GBG code). For each source and normalizer (none = the paper's Eq. 11, l2, loss+ = the GBG
code) it reports alpha, ||d|| / ||g_CE|| with d = sum_g alpha_g grad L_g over all weights
and g_CE the ordinary batch-mean cross-entropy gradient, cos(d, g_CE), and the pairwise
cosines of the group gradients; once at initialization and again after `--ce-steps` plain
CE steps (SGD 0.1, momentum 0.9). Writes benchmarks/results/gbg_diagnostics.json.

With `--model PATH` (a trained `.keras` model, e.g. the one `benchmarks.run` saves for a
GBG run) it analyses that model instead, on `--batches` batches, with the grouping stored in
the model (`gbg_groups`) or `--groups`, and writes `--output`
(default benchmarks/results/gbg_diagnostics_trained.json). `--dataset` (default
fashion-mnist-lt, imbalance factor 100) picks the training images; `cifar10-lt` needs
`--data-dir` (the CIFAR-10 JPEG folders). `--sampler gac` draws the batches from
`gbg.group_aware_completion` with the model's grouping (every group present, as the
benchmark's GBG runs train) instead of shuffled batches.
"""

import argparse
import json
import pathlib
import platform
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_longtail import data, gbg, models
from keras_longtail.ops import min_norm_weights

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"
NORMALIZATIONS = ("none", "l2", "loss+")


def _flat(gradients):
    return np.concatenate([np.asarray(g).reshape(-1) for g in gradients]).astype(np.float64)


def analyse(network, groups, batches):
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    head = network.get_layer("classifier").trainable_variables
    head_ids = {id(v) for v in head}
    everything = network.trainable_variables
    backbone = [v for v in everything if id(v) not in head_ids]
    rows = []
    for x, y in batches:
        member = groups[y.numpy()]
        present = [g for g in range(groups.max() + 1) if (member == g).any()]
        with tf.GradientTape(persistent=True) as tape:
            logits = network(x, training=True)
            losses = [ce(y[member == g], tf.boolean_mask(logits, member == g)) for g in present]
            batch_loss = ce(y, logits)
        full = np.array([_flat(tape.gradient(loss, everything)) for loss in losses])
        sources = {"all": full,
                   "classifier": np.array([_flat(tape.gradient(loss, head)) for loss in losses]),
                   "backbone": np.array([_flat(tape.gradient(loss, backbone)) for loss in losses])}
        g_ce = _flat(tape.gradient(batch_loss, everything))
        del tape
        loss_values = np.array([float(loss) for loss in losses])
        row = {"groups_present": present,
               "group_fraction": [round(float((member == g).mean()), 3) for g in present],
               "group_loss": np.round(loss_values, 3).tolist(),
               "group_gradient_norm": np.round(np.linalg.norm(full, axis=1), 3).tolist(),
               "ce_gradient_norm": round(float(np.linalg.norm(g_ce)), 3)}
        for name, matrix in sources.items():
            norms = np.linalg.norm(matrix, axis=1)
            cosines = (matrix @ matrix.T) / np.outer(norms, norms)
            entry = {"pairwise_cosine": np.round(cosines[np.triu_indices(len(present), 1)], 3).tolist()}
            for normalization in NORMALIZATIONS:
                alpha = np.asarray(min_norm_weights(matrix, solver="cvxopt", normalization=normalization,
                                                    losses=loss_values))
                direction = alpha @ full
                entry[normalization] = {
                    "alpha": np.round(alpha, 3).tolist(),
                    "d_over_ce_norm": round(float(np.linalg.norm(direction) / np.linalg.norm(g_ce)), 3),
                    "cos_d_ce": round(float(direction @ g_ce / np.linalg.norm(direction) / np.linalg.norm(g_ce)), 3)}
            row[name] = entry
        rows.append(row)
    return rows


def _batches(loaded, groups, sampler):
    """Batches of 128 training images: shuffled, or group-aware completion with `groups` (un-augmented)."""
    if sampler == "gac":
        return gbg.group_aware_completion(loaded.train, [int(g) for g in groups], loaded.class_counts, 128, seed=0,
                                          shuffle_buffer=loaded.num_train)
    return loaded.train.shuffle(loaded.num_train, seed=0).repeat().batch(128)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.gbg_diagnostics",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("fashion-mnist-lt", "cifar10-lt"), default="fashion-mnist-lt")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--sampler", choices=("random", "gac"), default="random",
                        help="shuffled batches, or group-aware completion with the grouping")
    parser.add_argument("--ce-steps", type=int, default=60)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None)
    parser.add_argument("--model", default=None, help="analyse this trained .keras model instead")
    parser.add_argument("--groups", default=None, help="comma-separated group of each class (with --model)")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    if args.dataset == "cifar10-lt":
        loaded = data.load_cifar_lt("cifar10", 100, data_dir=args.data_dir)
    else:
        loaded = data.load_fashion_mnist_lt(100, data_dir=args.data_dir)
    if args.model is not None:
        network = keras.saving.load_model(args.model, compile=False)
        if args.groups is not None:
            groups = np.array([int(g) for g in args.groups.split(",")])
        elif getattr(network, "grouping", None) is not None:
            groups = np.array(network.grouping.groups)
        else:
            parser.error("--model without a stored GBG grouping needs --groups")
        stream = iter(_batches(loaded, groups, args.sampler))
        results = {"dataset": args.dataset, "imbalance_factor": 100, "model_file": args.model,
                   "batch_size": 128, "sampler": args.sampler, "groups": groups.tolist(),
                   "command": " ".join(["python -m benchmarks.studies.gbg_diagnostics"] + sys.argv[1:]),
                   "machine": f"{platform.machine()}, {platform.python_version()}",
                   "trained": analyse(network, groups, [next(stream) for _ in range(args.batches)])}
        output = args.output or str(RESULTS / "gbg_diagnostics_trained.json")
        pathlib.Path(output).write_text(json.dumps(results, indent=1))
        print(json.dumps(results, indent=1))
        return 0
    network = models.resnet32(loaded.num_classes, input_shape=tuple(loaded.train.element_spec[0].shape))
    grouping = gbg.group_classes(network, loaded.train.batch(256), num_groups=4, seed=0)
    groups = np.array(grouping.groups)
    stream = iter(_batches(loaded, groups, args.sampler))
    results = {"dataset": args.dataset, "imbalance_factor": 100, "model": "resnet32", "batch_size": 128,
               "sampler": args.sampler,
               "groups": grouping.groups, "command": " ".join(["python -m benchmarks.studies.gbg_diagnostics"] + sys.argv[1:]),
               "machine": f"{platform.machine()}, {platform.python_version()}",
               "initialization": analyse(network, groups, [next(stream) for _ in range(args.batches)])}
    network.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    network.fit(loaded.train.shuffle(loaded.num_train, seed=1).repeat().batch(128),
                steps_per_epoch=args.ce_steps, epochs=1, verbose=0)
    results[f"after_{args.ce_steps}_ce_steps"] = analyse(network, groups, [next(stream) for _ in range(args.batches)])
    pathlib.Path(args.output or str(RESULTS / "gbg_diagnostics.json")).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
