"""Training curves of benchmark runs: each epoch's training logs, per run and seed, side by side.

    python -m benchmarks.studies.training_curves --suite cifar10-lt --budget e60 --runs ce,gbg-official \
        --metrics acc_overall,loss,gbg_alpha_max --output benchmarks/results/training_curves_gbg.png

reads `benchmarks/results/<suite>-<budget>/<run>-seed<k>.json` (written by `python -m benchmarks.run`; results
from `run_training` keep every epoch's training logs in `epoch_logs`, one list per `fit` phase, resumed runs
included) and draws one panel per metric: the metric against the epoch, one line per run (mean over the seeds
found, their range shaded). The logs are those of the training batches (augmented, and for GBG the sampler's
batches), so `acc_overall` says how well the network fits what it trains on, not its test accuracy. With
`--json`, the plotted means also go to a JSON file. Results written before `epoch_logs` existed are reported and
skipped; a run none of whose results has the logs is an error.
"""

import argparse
import json
import math
import pathlib
import re
import sys

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"


def epoch_curve(result, metric):
    """The metric's per-epoch values of one result, the phases in training order; None without `epoch_logs`."""
    logs = result.get("epoch_logs")
    if not logs:
        return None
    epochs = [epoch for phase in logs.values() for epoch in phase]
    if not any(metric in epoch for epoch in epochs):
        return []
    return [math.nan if epoch.get(metric) is None else epoch[metric] for epoch in epochs]  # None: not finite


def collect(results_dir, suite, budget, runs, metrics, seeds=None):
    """{run: {metric: {"seeds": [...], "mean": [...], "low": [...], "high": [...]}}} and the skipped files.

    A run's curves cover the epochs every one of its seeds has (the shortest curve).
    """
    directory = pathlib.Path(results_dir, f"{suite}-{budget}")
    curves, skipped, logged = {}, [], set()
    for run in runs:
        paths = [p for p in sorted(directory.glob(f"{run}-seed*.json"))
                 if re.fullmatch(rf"{re.escape(run)}-seed(\d+)\.json", p.name)
                 and (seeds is None or int(re.search(r"seed(\d+)", p.name).group(1)) in seeds)]
        if not paths:
            raise FileNotFoundError(f"Expected results of run {run!r} in {directory} (`python -m benchmarks.run "
                                    f"--suite {suite} --budget {budget} --runs {run}`). Received: none")
        results = []
        for path in paths:
            result = json.loads(path.read_text())
            if not result.get("epoch_logs"):
                skipped.append(str(path))
                continue
            results.append(result)
            logged.update(key for phase in result["epoch_logs"].values() for epoch in phase for key in epoch)
        if not results:
            raise ValueError(f"Expected `epoch_logs` in a result of run {run!r}; those in {directory} were written "
                             f"before results kept them. Rerun one (`--rerun`). Received: {len(paths)} without")
        curves[run] = {}
        for metric in metrics:
            per_seed = [(r["seed"], epoch_curve(r, metric)) for r in results]
            per_seed = [(seed, values) for seed, values in per_seed if values]
            if not per_seed:
                continue  # this run does not log the metric (e.g. CE and gbg_alpha_max)
            length = min(len(values) for _, values in per_seed)
            columns = list(zip(*(values[:length] for _, values in per_seed)))
            # a non-finite epoch (a diverged loss) stays NaN in the mean and the range
            stats = [(math.nan,) * 3 if any(map(math.isnan, c)) else (round(sum(c) / len(c), 6), min(c), max(c))
                     for c in columns]
            curves[run][metric] = {"seeds": [seed for seed, _ in per_seed],
                                   **dict(zip(("mean", "low", "high"), map(list, zip(*stats))))}
    missing = [m for m in metrics if not any(m in by_metric for by_metric in curves.values())]
    if missing:
        raise ValueError(f"Expected every metric in the logs of at least one run. Received: metrics {missing}; "
                         f"the runs log {sorted(logged)}")
    return curves, skipped


def plot(curves, metrics, output, title):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for axis, metric in zip(axes[0], metrics):
        for index, (run, by_metric) in enumerate(curves.items()):
            if metric not in by_metric:
                continue
            curve = by_metric[metric]
            epochs = range(1, len(curve["mean"]) + 1)
            seeds = ",".join(str(s) for s in curve["seeds"])
            # one colour per run in every panel, also where a run lacks a metric
            line, = axis.plot(epochs, curve["mean"], color=f"C{index}", label=f"{run} (seeds {seeds})")
            if len(curve["seeds"]) > 1:
                axis.fill_between(epochs, curve["low"], curve["high"], color=line.get_color(), alpha=0.2)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(RESULTS), help="the benchmark results folder")
    parser.add_argument("--suite", default="cifar10-lt")
    parser.add_argument("--budget", default="e60")
    parser.add_argument("--runs", required=True, help="comma-separated run names, e.g. ce,gbg-official")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: every seed found)")
    parser.add_argument("--metrics", default="acc_overall,loss", help="comma-separated training-log keys")
    parser.add_argument("--output", required=True, help="the PNG to write")
    parser.add_argument("--json", default=None, help="also write the plotted curves to this JSON file")
    args = parser.parse_args(argv)
    runs = [r for r in args.runs.split(",") if r]
    metrics = [m for m in args.metrics.split(",") if m]
    seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    output = pathlib.Path(args.output)
    if output.suffix.lower() != ".png" or not output.parent.is_dir():
        parser.error(f"Expected --output to be a .png file in an existing folder. Received: --output={args.output}")
    try:
        curves, skipped = collect(args.results, args.suite, args.budget, runs, metrics, seeds)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    for path in skipped:
        print(f"skipped (no epoch_logs): {path}", file=sys.stderr)
    plot(curves, metrics, output, f"{args.suite} {args.budget}: training logs per epoch")
    if args.json:
        plain = {run: {metric: {key: [None if isinstance(v, float) and math.isnan(v) else v for v in values]
                                for key, values in curve.items()} for metric, curve in by_metric.items()}
                 for run, by_metric in curves.items()}  # JSON has no NaN
        pathlib.Path(args.json).write_text(json.dumps(plain, indent=1) + "\n")
    print(f"wrote {output}" + (f" and {args.json}" if args.json else ""))


if __name__ == "__main__":
    main()
