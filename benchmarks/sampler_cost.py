"""CPU cost per batch of the long-tailed samplers' input pipelines, with and without cached class pools.

    python -m benchmarks.sampler_cost --data-dir DIR [--rounds 3] [--batches 40]

On CIFAR-10-LT (imbalance factor 100, batch 128, random crop and flip as the benchmark runs
train), times in interleaved rounds the batches of: shuffled batches (`recipes.training_pipeline`,
what CE trains on); GBG's group-aware completion sampler with cached class pools
(`cache_classes=True`, its default) and without; and Kang et al.'s class-balanced sampler,
cached and not. Each sampler's class pools filter the training set; without the cache every
pass over a class filters all of it again, which a rare class drawn often does every few
batches. The machine is shared and the pipelines run their own threads, so the figure is the
process's CPU time (all threads) per batch, and the ratio to shuffled batches. Writes
benchmarks/results/sampler_cost.json.
"""

import argparse
import json
import pathlib
import statistics
import sys

from benchmarks import _timing

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
BATCH_SIZE = 128
# The grouping of the GBG runs at seed 1 (benchmarks/results/cifar10-lt-e60/gbg-official-seed1.json).
GROUPS = [0, 0, 1, 2, 2, 1, 1, 2, 3, 1]


def pipelines(loaded, seed=0):
    """{name: infinite batched tf.data.Dataset} of the variants timed."""
    import tensorflow as tf

    from keras_longtail import data, gbg, recipes
    from keras_longtail.recipes.pipeline import crop_and_flip

    grouping = gbg.ClassGrouping(GROUPS)

    def gac(cache):
        return data.group_aware_completion(loaded.train, grouping, loaded.class_counts, BATCH_SIZE, seed=seed,
                                           shuffle_buffer=loaded.num_train, augment=crop_and_flip,
                                           cache_classes=cache).prefetch(tf.data.AUTOTUNE)

    def balanced(cache):
        return (data.class_balanced_sampler(loaded.train, loaded.num_classes, seed=seed, cache_classes=cache)
                .map(crop_and_flip, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH_SIZE)
                .prefetch(tf.data.AUTOTUNE))

    return {"shuffled": recipes.training_pipeline(loaded.train, loaded.num_train, BATCH_SIZE, augment=True,
                                                  seed=seed),
            "gac_cached": gac(True), "gac": gac(False),
            "class_balanced_cached": balanced(True), "class_balanced": balanced(False)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sampler_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the CIFAR-10 JPEG folders")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=40, help="batches per variant and round")
    parser.add_argument("--output", default=str(RESULTS / "sampler_cost.json"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.batches < 1:
        parser.error(f"Expected --rounds and --batches >= 1. Received: --rounds {args.rounds} --batches "
                     f"{args.batches}")
    from keras_longtail import data

    loaded = data.load_cifar_lt("cifar10", 100, data_dir=args.data_dir)
    iterators = {name: iter(dataset) for name, dataset in pipelines(loaded).items()}
    first = _timing.first_calls({name: (lambda it=it: next(it)) for name, it in iterators.items()})
    fns = {name: (lambda it=it: next(it)) for name, it in iterators.items()}
    _, cpu = _timing.interleaved(fns, args.rounds, calls=args.batches, cpu=True)
    results = {"dataset": "cifar10-lt", "imbalance_factor": 100, "batch_size": BATCH_SIZE, "groups": GROUPS,
               "rounds": args.rounds, "batches_per_round": args.batches,
               "first_batch_wall_seconds": {name: round(t, 2) for name, t in first.items()},
               "cpu_ms_per_batch": {name: round(1000 * statistics.median(t), 1) for name, t in cpu.items()},
               "cpu_ratio_to_shuffled": {name: round(_timing.median_of_ratios(cpu, name, "shuffled"), 2)
                                         for name in cpu},
               "command": " ".join(["python -m benchmarks.sampler_cost"] + list(
                   sys.argv[1:] if argv is None else argv)),
               "machine": _timing.machine()}
    pathlib.Path(args.output).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
