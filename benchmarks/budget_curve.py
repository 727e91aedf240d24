"""The budget curve: CE + WD on CIFAR-10-LT IF 100 at 12, 30, 60, 100 and 200 epochs, accuracy vs. CPU time.

    python -m benchmarks.budget_curve

reads `benchmarks/results/cifar10-lt-<budget>/ce-seed*.json` (written by `python -m benchmarks.run --suite
cifar10-lt --budget <budget> --runs ce --seeds 0,1,2` for the budgets short (12 epochs), e30, e60, e100 and full
(200)), and writes `benchmarks/results/budget_curve.json` (per budget: the seeds, mean ± std of the overall, Many
and Medium accuracy, and the training seconds) and `budget_curve.png` (accuracy vs. CPU hours of training, mean
± std over the seeds). It prints the *discriminative budget*: the cheapest budget at which CE + WD reaches
>= 60 % overall accuracy as the mean of at least 3 seeds, or, when none does, the closest one (the highest mean).

CPU time is the run's `train_cpu_seconds` (process CPU time of training, all threads). Results written before that
field existed have only wall time: their CPU time is estimated as their epochs x the median CPU seconds per epoch of
the results that measured it (the same step at every budget), or, when none did, as `train_seconds` x the machine's
cores (from the result's `machine` field; an upper bound on a busy machine). The JSON and the plot say which budgets
are estimated, and how.

Where `reference_budget_cifar10.json` (`python -m benchmarks.studies.reference_budget`: the PyTorch reference on our
arrays with our recipe, on a GPU) is in the results directory, the JSON carries its per-budget summary under
`"reference"` and the plot gets a second panel, overall accuracy vs. epochs: ours and the reference's, so that the
papers' 200 epochs, which our CPU runs do not reach, can be read off the reference where it agrees with ours.
"""

import argparse
import json
import os
import pathlib
import re
import statistics
import sys

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
# budget name -> epochs, cheapest first (benchmarks.run's names)
BUDGETS = {"short": 12, "e30": 30, "e60": 60, "e100": 100, "full": 200}
SPLITS = ("overall", "many", "medium")
THRESHOLD = 60.0
MIN_SEEDS = 3


def _cores(result):
    match = re.search(r"(\d+) cores", result.get("machine", ""))
    return int(match.group(1)) if match else os.cpu_count()


def _mean_std(values):
    if not values:
        return None
    return {"mean": round(statistics.mean(values), 2),
            "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0}


def collect(results_dir=RESULTS, suite="cifar10-lt", run="ce"):
    """Per budget with at least one result: seeds, accuracy mean ± std per split, wall and CPU seconds.

    Returns a list ordered by epochs of dicts with keys `budget`, `epochs`, `seeds`, `accuracy`
    ({split: {"mean", "std"}}), `train_seconds` and `train_cpu_seconds` (mean ± std over the seeds) and
    `cpu_seconds_estimated` (the seeds whose CPU time is estimated, see the module's docstring).
    """
    found = []
    for budget, epochs in BUDGETS.items():
        paths = sorted(pathlib.Path(results_dir, f"{suite}-{budget}").glob(f"{run}-seed*.json"),
                       key=lambda p: int(re.search(r"seed(\d+)", p.name).group(1)))
        paths = [p for p in paths if re.fullmatch(rf"{re.escape(run)}-seed\d+\.json", p.name)]
        if not paths:
            continue
        results = [json.loads(p.read_text()) for p in paths]
        for path, result in zip(paths, results):
            if result.get("epochs") != epochs:
                raise ValueError(f"Expected {epochs} epochs in {path} (budget {budget!r}). "
                                 f"Received: epochs={result.get('epochs')}")
        found.append((budget, epochs, results))
    per_epoch = [r["train_cpu_seconds"] / r["epochs"] for _, _, results in found for r in results
                 if r.get("train_cpu_seconds") is not None]
    curve = []
    for budget, epochs, results in found:
        cpu, estimated = [], []
        for result in results:
            if result.get("train_cpu_seconds") is not None:
                cpu.append(result["train_cpu_seconds"])
            else:
                cpu.append(epochs * statistics.median(per_epoch) if per_epoch
                           else result["train_seconds"] * _cores(result))
                estimated.append(result["seed"])
        curve.append({
            "budget": budget, "epochs": epochs, "seeds": [r["seed"] for r in results],
            "accuracy": {split: _mean_std([r["accuracy"][split] for r in results if split in r["accuracy"]])
                         for split in SPLITS},
            "train_seconds": _mean_std([r["train_seconds"] for r in results]),
            "train_cpu_seconds": _mean_std(cpu),
            "cpu_seconds_estimated": estimated,
        })
    return curve


def discriminative_budget(curve, threshold=THRESHOLD, min_seeds=MIN_SEEDS):
    """(entry, reason): the cheapest budget whose mean overall accuracy over >= `min_seeds` seeds is >=
    `threshold`; otherwise the entry closest to it (highest mean overall), with the reason saying so."""
    if not curve:
        raise ValueError("Expected at least one budget with results. Received: an empty curve")
    for entry in curve:  # ordered cheapest first
        if len(entry["seeds"]) >= min_seeds and entry["accuracy"]["overall"]["mean"] >= threshold:
            return entry, (f"cheapest budget with >= {threshold:g} % overall over {len(entry['seeds'])} seeds")
    best = max(curve, key=lambda e: e["accuracy"]["overall"]["mean"])
    short = [e["budget"] for e in curve
             if e["accuracy"]["overall"]["mean"] >= threshold and len(e["seeds"]) < min_seeds]
    reason = f"no budget reaches {threshold:g} % over >= {min_seeds} seeds; closest (highest mean overall)"
    if short:
        reason += f"; {short} reach it with fewer than {min_seeds} seeds: run more seeds there"
    return best, reason


def plot(curve, path, threshold=THRESHOLD, reference=None):
    """Accuracy (overall, Many, Medium; mean ± std) vs. CPU hours of training, one point per budget; with
    `reference` (the `"reference"` part of `reference_budget_cifar10.json`), a second panel: overall accuracy vs.
    epochs, ours and the PyTorch reference's."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    hours = [e["train_cpu_seconds"]["mean"] / 3600 for e in curve]
    if reference:
        figure, (axes, by_epochs) = plt.subplots(1, 2, figsize=(11.0, 4.2), gridspec_kw={"width_ratios": [3, 2]})
        _plot_by_epochs(by_epochs, curve, reference, threshold)
    else:
        figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for split, marker in zip(SPLITS, "osd"):
        points = [(h, e["accuracy"][split]) for h, e in zip(hours, curve) if e["accuracy"][split]]
        axes.errorbar([h for h, _ in points], [a["mean"] for _, a in points], yerr=[a["std"] for _, a in points],
                      marker=marker, capsize=3, label=split.capitalize())
    for h, e in zip(hours, curve):
        label = f"{e['epochs']} ep ({len(e['seeds'])}s)" + ("*" if e["cpu_seconds_estimated"] else "")
        axes.annotate(label, (h, e["accuracy"]["overall"]["mean"]), textcoords="offset points", xytext=(4, 6),
                      fontsize=8)
    axes.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("training CPU time (CPU hours, mean over seeds)")
    axes.set_ylabel("test accuracy (%)")
    title = "CE + WD, CIFAR-10-LT IF 100, ResNet-32"
    if any(e["cpu_seconds_estimated"] for e in curve):
        title += "\n* CPU time estimated (epochs x measured CPU s per epoch; see budget_curve.json)"
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_by_epochs(axes, curve, reference, threshold):
    ours = [(e["epochs"], e["accuracy"]["overall"]) for e in curve]
    axes.errorbar([e for e, _ in ours], [a["mean"] for _, a in ours], yerr=[a["std"] for _, a in ours], marker="o",
                  capsize=3, label="ours (TensorFlow, CPU)")
    budgets = sorted(reference.values(), key=lambda r: r["last_epoch"])
    axes.errorbar([r["last_epoch"] for r in budgets], [r["overall"] for r in budgets],
                  yerr=[r["overall_std"] or 0.0 for r in budgets], marker="s", capsize=3, linestyle="--",
                  label="PyTorch reference (GPU)")
    for r in budgets:
        if not r["finished"]:
            axes.annotate(f"stopped at epoch {r['last_epoch']}", (r["last_epoch"], r["overall"]),
                          textcoords="offset points", xytext=(-100, -18), fontsize=8)
    axes.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel("epochs (the reference at 200: its last evaluated epoch)")
    axes.set_ylabel("overall test accuracy (%)")
    axes.set_title("Overall accuracy vs. epochs (mean ± std over seeds)", fontsize=10)
    axes.legend(loc="lower right")
    axes.grid(alpha=0.3)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.budget_curve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", default=str(RESULTS), help="where the <suite>-<budget>/ folders are")
    parser.add_argument("--output-dir", default=None, help="where budget_curve.json/.png go (default: results dir)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="overall accuracy %% (default: 60)")
    args = parser.parse_args(argv)
    curve = collect(args.results_dir)
    if not curve:
        print(f"no cifar10-lt-<budget>/ce-seed*.json under {args.results_dir}", file=sys.stderr)
        return 1
    entry, reason = discriminative_budget(curve, args.threshold)
    output = pathlib.Path(args.output_dir or args.results_dir)
    output.mkdir(parents=True, exist_ok=True)
    reference_path = pathlib.Path(args.results_dir, "reference_budget_cifar10.json")
    reference = json.loads(reference_path.read_text())["reference"] if reference_path.is_file() else None
    report = {"suite": "cifar10-lt", "run": "ce", "threshold": args.threshold, "min_seeds": MIN_SEEDS,
              "discriminative_budget": entry["budget"], "reason": reason, "budgets": curve,
              "note": "train_cpu_seconds: process CPU time of training. The seeds in cpu_seconds_estimated were "
                      "written before the field existed: their CPU time is epochs x the median CPU seconds per "
                      "epoch of the measured results (train_seconds x cores when no result measured it)"}
    if reference:
        report["reference"] = {"source": reference_path.name, "budgets": reference}
    (output / "budget_curve.json").write_text(json.dumps(report, indent=2))
    plot(curve, output / "budget_curve.png", args.threshold, reference)
    for e in curve:
        splits = ", ".join(f"{split} {a['mean']:.1f} ± {a['std']:.1f}" if a else f"{split} absent"
                           for split, a in e["accuracy"].items())
        print(f"{e['budget']:>6} {e['epochs']:>4} epochs, seeds {e['seeds']}: {splits}; "
              f"{e['train_cpu_seconds']['mean'] / 3600:.2f} CPU h" + (" (est.)" if e["cpu_seconds_estimated"] else ""))
    print(f"discriminative budget: {entry['budget']} ({entry['epochs']} epochs): {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
