"""Keras' SGD momentum against PyTorch's at the LDAM-DRW learning-rate drop: the training loss around it.

    python -m benchmarks.studies.momentum_form --data-dir /tmp/cifar10-jpeg --epochs 12 --steps-per-epoch 25 \
        --seeds 0,1 --output benchmarks/results/momentum_form.json --plot benchmarks/results/momentum_form.png

`keras.optimizers.SGD(momentum=0.9)` keeps the learning rate inside its velocity (v = 0.9 v - lr g; w += v), the
papers' PyTorch code outside it (b = 0.9 b + g; w -= lr b; `keras_longtail.optimizers.PyTorchSGD`). The two agree
while the rate is constant; after the recipe's x0.01 drop (at 80 % of the steps) Keras' velocity still carries
about ten steps' worth of the old rate. This study trains CE + WD (`run_training("cifar10-lt", method="ce")`, the
benchmark recipe: ResNet-32, batch 128, decoupled WD 5e-3, the LDAM-DRW schedule scaled to the budget) once per
momentum form and seed, and records each epoch's mean training loss and accuracy (`epoch_logs`) and the test
accuracy. A short budget (epochs x steps per epoch) keeps it cheap; the drop lands at the same fraction of the
steps as in the 60-epoch runs. Finished (form, seed) pairs already in `--output` are kept, so an interrupted
study resumes; `--rerun` trains them again.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

from benchmarks import _timing

FORMS = ("keras", "pytorch")


def epoch_curves(results):
    """(loss, acc_overall) per epoch of one `run_training` result (its single `fit` phase)."""
    (epochs,) = results["epoch_logs"].values()
    return [e["loss"] for e in epochs], [e.get("acc_overall") for e in epochs]


def drop_epoch(epochs, steps_per_epoch):
    """The 1-based epoch in which the first x0.01 drop (after 80 % of the steps) takes effect."""
    return int(0.8 * epochs * steps_per_epoch) // steps_per_epoch + 1


def summarize(runs, drop):
    """Per form: the mean over seeds of the epoch losses, and per seed the largest rise of the epoch loss from the
    last epoch before the drop to any epoch from the drop on (positive: the loss went up after the drop)."""
    summary = {}
    for form in FORMS:
        mine = [r for r in runs if r["momentum_form"] == form]
        if not mine:
            continue
        curves = [r["loss"] for r in mine]
        length = min(len(c) for c in curves)
        mean = [sum(c[i] for c in curves) / len(curves) for i in range(length)]
        rises = [max(c[drop - 1:]) - c[drop - 2] for c in curves if len(c) >= drop]
        summary[form] = {"seeds": [r["seed"] for r in mine], "mean_loss": [round(v, 4) for v in mean],
                         "largest_rise_after_drop": [round(v, 4) for v in rises],
                         "final_loss": [round(c[-1], 4) for c in curves],
                         "test_accuracy": [r["accuracy"]["overall"] for r in mine]}
    return summary


def plot(study, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    for run in study["runs"]:
        color = "tab:red" if run["momentum_form"] == "keras" else "tab:blue"
        label = f"{run['momentum_form']} form, seed {run['seed']}"
        axis.plot(range(1, len(run["loss"]) + 1), run["loss"], color=color, alpha=0.5 + 0.5 * (run["seed"] == 0),
                  label=label)
    # Epoch k's mean is drawn at x = k, the middle of its steps, so step s sits at x = s / steps_per_epoch + 0.5.
    first_dropped_step = int(0.8 * study["epochs"] * study["steps_per_epoch"]) + 1
    axis.axvline(first_dropped_step / study["steps_per_epoch"] + 0.5, color="gray", linestyle=":",
                 label=f"x0.01 learning-rate drop (step {first_dropped_step})")
    axis.set_xlabel("epoch")
    axis.set_ylabel("mean training loss")
    axis.set_title(f"CE + WD, ResNet-32, CIFAR-10-LT: {study['epochs']} epochs x {study['steps_per_epoch']} steps")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 JPEG folder (train/, test/)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--forms", default=",".join(FORMS))
    parser.add_argument("--output", type=pathlib.Path, required=True)
    parser.add_argument("--plot", type=pathlib.Path, default=None)
    parser.add_argument("--rerun", action="store_true", help="train (form, seed) pairs already in --output again")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    forms = args.forms.split(",")
    unknown = [f for f in forms if f not in FORMS]
    if unknown:
        parser.error(f"Expected --forms from {list(FORMS)}. Received: {unknown}")
    if args.epochs < 2 or args.steps_per_epoch < 1:
        parser.error(f"Expected --epochs >= 2 and --steps-per-epoch >= 1. Received: {args.epochs}, "
                     f"{args.steps_per_epoch}")
    if not pathlib.Path(args.data_dir, "train").is_dir():
        parser.error(f"Expected a CIFAR-10 JPEG folder with train/ and test/. Received: --data-dir {args.data_dir}")

    from keras_longtail.recipes import run_training

    command_line = "python -m benchmarks.studies.momentum_form " + " ".join(sys.argv[1:] if argv is None else argv)
    study = {"command": command_line,
             "machine": _timing.machine(),
             "recipe": "run_training('cifar10-lt', method='ce'): ResNet-32, batch 128, SGD momentum 0.9, "
                       "decoupled WD 5e-3, LDAM-DRW schedule (warm-up 2.5 %, x0.01 at 80 %, x0.0001 at 90 %)",
             "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
             "drop_epoch": drop_epoch(args.epochs, args.steps_per_epoch), "runs": []}
    if args.output.exists():
        previous = json.loads(args.output.read_text())
        same = (previous.get("epochs"), previous.get("steps_per_epoch")) == (args.epochs, args.steps_per_epoch)
        if not same:
            parser.error(f"Expected --output for the same budget ({previous.get('epochs')} x "
                         f"{previous.get('steps_per_epoch')}) or a new file. Received: {args.epochs} x "
                         f"{args.steps_per_epoch}, --output {args.output}")
        study["command"] = previous.get("command", command_line)
        study["runs"] = [r for r in previous["runs"] if not (args.rerun and r["momentum_form"] in forms
                                                              and r["seed"] in seeds)]
    done = {(r["momentum_form"], r["seed"]) for r in study["runs"]}
    todo = [(form, seed) for seed in seeds for form in forms if (form, seed) not in done]
    for form, seed in sorted(done):
        print(f"{form} seed {seed}: already in {args.output}")
    if len(todo) > 1:
        # One process per training run: TensorFlow's op seeds depend on what the process built before, so two runs in
        # one process with the same seed would not start alike.
        args.output.write_text(json.dumps(study, indent=1) + "\n")
        for form, seed in todo:
            command = [sys.executable, "-m", "benchmarks.studies.momentum_form", "--data-dir", args.data_dir,
                       "--epochs", str(args.epochs), "--steps-per-epoch", str(args.steps_per_epoch),
                       "--seeds", str(seed), "--forms", form, "--output", str(args.output)]
            subprocess.run(command, check=True)
        study["runs"] = json.loads(args.output.read_text())["runs"]
        study["command"] = command_line
    for form, seed in todo[:1] if len(todo) == 1 else []:
        start = time.time()
        results = run_training("cifar10-lt", method="ce", epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                               data_dir=args.data_dir, seed=seed, momentum_form=form, verbose=0)
        loss, accuracy = epoch_curves(results)
        study["runs"].append({"momentum_form": form, "seed": seed, "loss": loss, "train_acc_overall": accuracy,
                              "accuracy": results["accuracy"], "train_seconds": results["train_seconds"]})
        print(f"{form} seed {seed}: losses {[round(v, 3) for v in loss]}, test "
              f"{results['accuracy']['overall']:.1f} % ({time.time() - start:.0f} s)", flush=True)
    study["summary"] = summarize(study["runs"], study["drop_epoch"])
    args.output.write_text(json.dumps(study, indent=1) + "\n")
    if args.plot:
        plot(study, args.plot)
    for form, row in study["summary"].items():
        print(f"{form}: mean loss by epoch {row['mean_loss']}; largest rise from epoch {study['drop_epoch'] - 1} "
              f"on {row['largest_rise_after_drop']}")


if __name__ == "__main__":
    main()
