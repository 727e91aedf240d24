"""Monocular depth on synthetic road scenes: mean relative error per distance bin (GradTail Table 2 layout).

    python -m benchmarks.studies.depth_synthetic --variants baseline,gradtail --seeds 0,1   # ~35 min on 2 shared cores
    python -m benchmarks.studies.depth_synthetic --variants baseline --epochs 30 --train-scenes 2000

Every variant is `keras_longtail.recipes.run_depth_training` (the job behind
`keras-longtail train --task depth --dataset synthetic-depth`) on the same
`synthetic_depth_scenes` (rare far-range scenes), the same `depth_unet`, Adam at a
constant learning rate, the same seeds and budget; only the method differs:

- baseline: `MaskedL1` (ℓ1 on the pixels with ground truth);
- gradtail: the paper's configuration, `training.gradtail_depth` (biases of
  `decoder_up_1` and `decoder_up_2`, 6 random 20-100 px patches + the uncovered
  pixels, max weight 15, pivot −0.5) on the per-pixel ℓ1 with the mask as
  `sample_weight`.

It reports `BinnedMeanRelativeError` (< 20 m, 20-40 m, 40-60 m, > 60 m, total) on
held-out scenes per seed and as mean ± std over the seeds, in
`benchmarks/results/depth_synthetic.json` and `depth_synthetic.md`. Compared with the
paper (192×480, batch 10, lr 2e-4 for a long schedule on Waymo), the small budget
uses 128×320 images, a half-width network and lr 1e-3 so that minutes on a CPU reach
a meaningful error.
"""

import argparse
import json
import pathlib
import platform
import statistics
import sys

import keras

from keras_longtail import recipes
from keras_longtail.gradtail import GRADTAIL_DEPTH_PIVOT
from keras_longtail import metrics as lt_metrics
from keras_longtail.gradtail import GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results" / "depth_synthetic.json"

# name -> run_depth_training arguments besides the shared budget.
VARIANTS = {
    "baseline": {"method": "ce"},
    "gradtail": {"method": "gradtail", "gradtail_pivot": GRADTAIL_DEPTH_PIVOT,
                 "gradtail_max_weight": GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT},
    # Control: GradTail's patch objective with every weight q = 1 (max weight 1), same step otherwise.
    "patches_q1": {"method": "gradtail", "gradtail_pivot": GRADTAIL_DEPTH_PIVOT, "gradtail_max_weight": 1.0},
}
LABELS = {"baseline": "Baseline (masked L1)", "gradtail": "GradTail, pivot -0.5 (decoder_up_1/2 biases)",
          "patches_q1": "Control: patch objective, q = 1 (GradTail with max weight 1)"}
# The paper's Table 2 (Waymo, MRE %), the reference direction.
PAPER = {"baseline": [10.1, 11.9, 14.2, 16.8, 11.0], "gradtail": [10.1, 11.7, 13.7, 16.5, 10.8]}

SMALL = {
    "image_size": (128, 320),
    "width_multiplier": 0.5,
    "train_scenes": 600,
    "test_scenes": 200,
    "far_probability": 0.15,
    "epochs": 12,
    "batch_size": 10,
    "learning_rate": 1e-3,
}

MRE_KEYS = lt_metrics.BinnedMeanRelativeError().bin_names() + ["mre_total"]
COLUMNS = ["<20 m", "20-40 m", "40-60 m", ">60 m", "total"]


def run(variants=("baseline", "gradtail"), seeds=(0,), output=RESULTS, verbose=2, command=None, **overrides):
    """Runs every variant for every seed with the small budget (updated by `overrides`) and writes JSON + markdown."""
    config = {**SMALL, **overrides}
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"Expected `variants` among {sorted(VARIANTS)}. Received unknown: {unknown}")
    results = {
        "task": "synthetic monocular depth (keras_longtail.data.synthetic_depth_scenes)",
        "command": command,
        "config": {**config, "image_size": list(config["image_size"]), "optimizer": "Adam, constant learning rate"},
        "machine": f"{platform.machine()}, {platform.python_version()}, keras {keras.__version__}",
        "variants": {},
    }
    for seed in seeds:
        for name in variants:
            run_result = recipes.run_depth_training("synthetic-depth", seed=seed, verbose=verbose,
                                                **VARIANTS[name], **config)
            results.setdefault("test_pixel_share_percent", {})[str(seed)] = run_result["test_pixel_share_percent"]
            results["variants"].setdefault(name, {"runs": {}})["runs"][str(seed)] = run_result
            results["variants"][name]["summary"] = summarize(results["variants"][name]["runs"])
            if output:
                write(results, output)
    return results


def summarize(runs):
    """Mean and sample std (0 for one seed) of every MRE bin, and the mean training time."""
    summary = {}
    for key in MRE_KEYS:
        values = [r["mre"][key] for r in runs.values()]
        summary[key] = {"mean": round(statistics.fmean(values), 3),
                        "std": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0}
    summary["train_seconds"] = round(statistics.fmean(r["train_seconds"] for r in runs.values()), 1)
    summary["seeds"] = len(runs)
    return summary


def write(results, output):
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    output.with_suffix(".md").write_text(format_markdown(results) + "\n")


def format_table(results):
    """Plain-text per-bin table (mean over seeds)."""
    header = f"{'MRE %':<12}" + "".join(f"{c:>10}" for c in COLUMNS) + f"{'seeds':>7}{'train s':>9}"
    rows = [header, "-" * len(header)]
    for name, variant in results["variants"].items():
        s = variant["summary"]
        rows.append(f"{name:<12}" + "".join(f"{s[k]['mean']:10.2f}" for k in MRE_KEYS)
                    + f"{s['seeds']:7d}{s['train_seconds']:9.0f}")
    return "\n".join(rows)


def format_markdown(results):
    """Markdown table: mean ± std per bin, the gradtail − baseline difference, and the paper's Table 2."""
    c = results["config"]
    lines = [f"Synthetic depth scenes, depth_unet x{c['width_multiplier']:g} at {c['image_size'][0]}x"
             f"{c['image_size'][1]}, {c['train_scenes']} training / {c['test_scenes']} test scenes, {c['epochs']} "
             f"epochs, batch {c['batch_size']}, Adam {c['learning_rate']:g} ({results['machine']})", ""]
    if results.get("command"):
        lines += [f"`{results['command']}`", ""]
    lines += ["| MRE % (lower is better) | seeds | " + " | ".join(COLUMNS) + " | train s |",
              "|---" * (len(COLUMNS) + 3) + "|"]
    variants = results["variants"]
    for name, variant in variants.items():
        s = variant["summary"]
        cells = [f"{s[k]['mean']:.2f} ± {s[k]['std']:.2f}" for k in MRE_KEYS]
        lines.append(f"| {LABELS.get(name, name)} | {s['seeds']} | " + " | ".join(cells)
                     + f" | {s['train_seconds']:.0f} |")
    if "baseline" in variants and "gradtail" in variants:
        base, grad = variants["baseline"]["runs"], variants["gradtail"]["runs"]
        common = sorted(set(base) & set(grad))
        if common:
            cells = []
            for k in MRE_KEYS:
                diffs = [grad[s]["mre"][k] - base[s]["mre"][k] for s in common]
                cells.append(f"{statistics.fmean(diffs):+.2f} ({', '.join(f'{d:+.2f}' for d in diffs)})")
            lines.append(f"| GradTail − baseline, per seed | {len(common)} | " + " | ".join(cells) + " | |")
    for name in ("baseline", "gradtail"):
        lines.append(f"| paper Table 2 (Waymo): {LABELS[name]} | | "
                     + " | ".join(f"{v:.1f}" for v in PAPER[name]) + " | |")
    shares = results.get("test_pixel_share_percent", {})
    lines += [""] if shares else []
    for seed, share in shares.items():
        lines.append(f"Test pixels with ground truth per bin, seed {seed}'s test scenes (%): {share}  ")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="baseline,gradtail", help=f"comma-separated, from {sorted(VARIANTS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    parser.add_argument("--epochs", type=int, default=SMALL["epochs"])
    parser.add_argument("--train-scenes", type=int, default=SMALL["train_scenes"])
    parser.add_argument("--test-scenes", type=int, default=SMALL["test_scenes"])
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    command = " ".join(["python -m benchmarks.studies.depth_synthetic", *(sys.argv[1:] if argv is None else argv)])
    results = run(variants, seeds, output=args.output, verbose=args.verbose, command=command, epochs=args.epochs,
                  train_scenes=args.train_scenes, test_scenes=args.test_scenes)
    print(format_table(results))
    print(f"test pixels per bin (%): {results.get('test_pixel_share_percent')}")
    print(f"results written to {args.output}")


if __name__ == "__main__":  # pragma: no cover
    main()
