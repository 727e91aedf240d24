"""The class prior GBG's group-mean losses imply, and a trained GBG model with that prior undone.

    python -m benchmarks.studies.gbg_implied_prior --groups 0,0,1,2,2,1,1,2,3,1 [--sampler gac|random]
        [--alpha uniform|A0,A1,...] [--batches 500]
    python -m benchmarks.studies.gbg_implied_prior --model RUN.keras --data-dir DIR [--alpha uniform|model]
        [--output benchmarks/results/gbg_implied_prior_<name>.json]

GBG's loss is sum_g alpha_g L_g with L_g the mean loss over the n_g examples of group g in the
batch, so an example of class c in group g carries weight alpha_g / n_g, where plain CE gives
every example 1 / B. Summed over a class and averaged over the sampler's batches, that is the
share s_c of the loss each class holds (CE: its share of the training set, pi_c). A cross-entropy
minimized with class shares s_c learns p(y | x) tilted by s_c / pi_c, so its logits carry the
offset log s_c where class-balanced accuracy wants the same offset for every class; a class whose
share is far below the others' is predicted rarely, whatever its features (Menon et al. 2021).

This script computes s_c by drawing `--batches` label batches from the sampler the benchmark's
GBG runs use (`gbg.group_aware_completion`, the paper's, or shuffled batches, the GBG code's),
with alpha uniform over the present groups (exact for `weighting="average"`; for the per-step
min-norm solve it stands for the solve's average), a given alpha (renormalized over the present
groups, as the step does), or with `--alpha model` the alpha a `solve_every` run held (stored in
its `.keras` as `gbg_alpha`). With `--model` it also evaluates the trained model on the test set
three ways: as trained; with the implied prior undone (logits - log s_c); and with the training
prior undone (logits - log pi_c, post-hoc logit adjustment as one would apply to CE). If undoing
the implied prior recovers the accuracy, the group losses shifted the decision prior and the
features are sound; if not, the features themselves are poorer. CIFAR-10-LT (imbalance factor
100, `--data-dir` the CIFAR-10 JPEG folders) is the suite; `--dataset fashion-mnist-lt` also works.
Writes `--output` (JSON).

References:
    Menon et al., "Long-tail learning via logit adjustment", ICLR 2021, https://arxiv.org/abs/2007.07314.
    Li et al., "Long-Tailed Learning as Multi-Objective Optimization", AAAI 2024, https://arxiv.org/abs/2310.20490.
"""

import argparse
import json
import pathlib
import platform
import sys

import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"
SAMPLERS = ("gac", "random")
BATCH_SIZE = 128
CIFAR10_LT_COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def batch_class_shares(labels, groups, alpha, num_classes):
    """Each class's share of one batch's loss sum_g alpha_g L_g (L_g the mean over group g's examples).

    `alpha` is renormalized over the groups present in the batch (the step's rule); the shares sum to 1.

    >>> batch_class_shares(np.array([0, 0, 0, 1, 2]), np.array([0, 0, 1]), np.array([0.5, 0.5]), 3).tolist()
    [0.375, 0.125, 0.5]
    """
    labels = np.asarray(labels, np.int64)
    member = groups[labels]
    sizes = np.bincount(member, minlength=len(alpha)).astype(np.float64)
    weights = np.where(sizes > 0, alpha, 0.0)
    if weights.sum() <= 0:
        raise ValueError(f"Expected alpha to weight a group present in the batch. Received: alpha={alpha.tolist()}, "
                         f"present groups {np.flatnonzero(sizes).tolist()}")
    weights = weights / weights.sum()
    per_example = weights[member] / sizes[member]
    return np.bincount(labels, weights=per_example, minlength=num_classes)


def label_batches(groups, class_counts, sampler, batches, seed=0, batch_size=BATCH_SIZE):
    """`batches` label batches of the benchmark's GBG input pipeline (labels only, no images)."""
    import tensorflow as tf

    from keras_longtail import gbg, recipes

    if sampler not in SAMPLERS:
        raise ValueError(f"Expected sampler in {list(SAMPLERS)}. Received: sampler={sampler!r}")
    labels = np.repeat(np.arange(len(class_counts)), class_counts).astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros(len(labels), np.float32), labels))
    if sampler == "gac":
        stream = gbg.group_aware_completion(dataset, gbg.ClassGrouping(groups.tolist()), class_counts, batch_size,
                                            seed=seed, shuffle_buffer=len(labels))
    else:
        stream = recipes.training_pipeline(dataset, len(labels), batch_size, augment=False, seed=seed)
    return [y.numpy() for _, y in stream.take(batches)]


def class_loss_shares(groups, class_counts, sampler="gac", alpha=None, batches=500, seed=0):
    """(s_c, mean examples of each class per batch) over `batches` batches of `sampler`."""
    groups = np.asarray(groups, np.int64)
    if len(groups) != len(class_counts):
        raise ValueError(f"Expected one group per class ({len(class_counts)}). Received: groups={groups.tolist()}")
    num_groups = int(groups.max()) + 1
    alpha = np.full(num_groups, 1.0 / num_groups) if alpha is None else np.asarray(alpha, np.float64)
    if alpha.shape != (num_groups,) or np.any(alpha < 0):
        raise ValueError(f"Expected {num_groups} non-negative alpha values. Received: alpha={alpha.tolist()}")
    shares, per_batch = np.zeros(len(class_counts)), np.zeros(len(class_counts))
    stream = label_batches(groups, class_counts, sampler, batches, seed=seed)
    for labels in stream:
        shares += batch_class_shares(labels, groups, alpha, len(class_counts))
        per_batch += np.bincount(labels, minlength=len(class_counts))
    return shares / len(stream), per_batch / len(stream)


def _accuracy(labels, logits, class_counts):
    from keras_longtail.recipes import evaluation

    accuracy, per_class = evaluation.shot_accuracy(class_counts, labels, logits)
    return {**accuracy, "per_class": per_class}


def evaluate_with_priors(network, loaded, shares):
    """Test accuracy as trained, with the implied prior undone, and with the training prior undone."""
    import keras

    from keras_longtail.recipes import evaluation

    _, labels, logits = evaluation.evaluate(network, loaded)  # run_training's own test pass
    labels = keras.ops.convert_to_numpy(labels)
    logits = keras.ops.convert_to_numpy(logits).astype(np.float64)
    counts = np.asarray(loaded.class_counts, np.float64)
    return {"as_trained": _accuracy(labels, logits, loaded.class_counts),
            "implied_prior_undone": _accuracy(labels, logits - np.log(shares), loaded.class_counts),
            "training_prior_undone": _accuracy(labels, logits - np.log(counts / counts.sum()), loaded.class_counts)}


def _parse_alpha(text, parser):
    if text in (None, "uniform", "model"):
        return text
    try:
        return [float(a) for a in text.split(",")]
    except ValueError:
        parser.error(f"Expected --alpha uniform, model or comma-separated numbers. Received: --alpha {text}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.gbg_implied_prior",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", default=None, help="comma-separated group of each class (else the model's)")
    parser.add_argument("--model", default=None, help="a trained GBG .keras model to evaluate")
    parser.add_argument("--dataset", choices=("cifar10-lt", "fashion-mnist-lt"), default="cifar10-lt")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sampler", choices=SAMPLERS, default="gac")
    parser.add_argument("--alpha", default="uniform", help="uniform, model (a held alpha) or A0,A1,...")
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    alpha = _parse_alpha(args.alpha, parser)
    if args.batches < 1:
        parser.error(f"Expected --batches >= 1. Received: --batches {args.batches}")
    if args.model is None and args.groups is None:
        parser.error("Expected --groups or --model (whose stored grouping is used)")
    if alpha == "model" and args.model is None:
        parser.error("--alpha model reads the alpha a trained model held: it needs --model")
    network = loaded = None
    if args.model is not None:
        import keras

        import keras_longtail.gbg  # noqa: F401  (registers GBGModel for loading)

        if not pathlib.Path(args.model).is_file():
            parser.error(f"Expected --model to be a .keras file. Received: --model {args.model}")
        network = keras.saving.load_model(args.model, compile=False)
    if args.groups is not None:
        groups = [int(g) for g in args.groups.split(",")]
    elif getattr(network, "grouping", None) is not None:
        groups = list(network.grouping.groups)
    else:
        parser.error("--model without a stored GBG grouping needs --groups")
    if alpha == "model":
        if not hasattr(network, "gbg_alpha"):
            parser.error("--alpha model needs a model trained with solve_every > 1 (it stores the held alpha)")
        alpha = np.asarray(network.gbg_alpha.numpy(), np.float64).tolist()
    elif alpha == "uniform":
        alpha = None
    if network is not None:
        from keras_longtail import data

        loaded = (data.load_cifar_lt("cifar10", 100, data_dir=args.data_dir) if args.dataset == "cifar10-lt"
                  else data.load_fashion_mnist_lt(100, data_dir=args.data_dir))
        counts = list(loaded.class_counts)
    elif args.dataset == "cifar10-lt":
        counts = CIFAR10_LT_COUNTS
    else:
        parser.error("--dataset fashion-mnist-lt needs --model (its class counts come from the data)")
    shares, per_batch = class_loss_shares(groups, counts, args.sampler, alpha=alpha, batches=args.batches,
                                          seed=args.seed)
    prior = np.asarray(counts, np.float64) / sum(counts)
    results = {"dataset": args.dataset, "imbalance_factor": 100, "groups": groups, "class_counts": counts,
               "sampler": args.sampler, "alpha": "uniform over present groups" if alpha is None else alpha,
               "batches": args.batches, "batch_size": BATCH_SIZE, "model_file": args.model,
               "training_prior": [round(float(p), 5) for p in prior],
               "loss_share": [round(float(s), 5) for s in shares],
               "share_over_prior": [round(float(s / p), 3) for s, p in zip(shares, prior)],
               "examples_per_batch": [round(float(n), 2) for n in per_batch],
               "command": " ".join(["python -m benchmarks.studies.gbg_implied_prior"] + list(
                   sys.argv[1:] if argv is None else argv)),
               "machine": f"{platform.machine()}, {platform.python_version()}"}
    if network is not None:
        results["test_accuracy"] = evaluate_with_priors(network, loaded, shares)
    text = json.dumps(results, indent=1)
    if args.output:
        pathlib.Path(args.output).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
