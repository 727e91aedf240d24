"""`PyTorchSGD` and `keras.optimizers.SGD` next to `torch.optim.SGD`, on the same gradients, through the LDAM drops.

    python -m benchmarks.studies.pytorch_sgd_agrees --output benchmarks/results/pytorch_sgd_agrees.json

Needs the CPU build of torch (a benchmark-only extra: `pip install torch==2.13.0`). Starting from the same weights,
each optimizer is fed the same sequence of gradients (random, seeded; the network does not matter for the update
rule) for `--epochs` x `--steps-per-epoch` steps under `recipes.ldam_schedule(0.1, ...)` (linear warm-up, x0.01 at
80 % of the steps, x0.0001 at 90 %). torch's learning rate is set before every step from the same schedule, as a
per-step scheduler would. Weight decay is PyTorch's coupled L2 term (`g + λ w`), added to the gradients of all three
alike (the Keras optimizers get it inside the gradient, their own decoupled `weight_decay` off), so that the rule
itself is what is compared. Reported per step: the largest absolute weight difference of each Keras optimizer from
torch's, and where it is largest. `PyTorchSGD` should agree to float32 rounding everywhere; Keras' `SGD` agrees
while the rate is constant and departs in the warm-up and at each drop.
"""

import argparse
import json
import pathlib

import numpy as np

from benchmarks import _timing


def trajectories(epochs, steps_per_epoch, momentum, nesterov, l2, seed=0, shapes=((64, 10), (10,), (3, 3, 16, 16))):
    """Per step and Keras optimizer (`PyTorchSGD`, `keras.optimizers.SGD`): the largest |w - w_torch| after the step,
    and the relative difference of the step itself, ||dw - dw_torch|| / ||dw_torch|| (dw: this step's change)."""
    import keras
    import torch

    from keras_longtail import recipes
    from keras_longtail.optimizers import PyTorchSGD

    rng = np.random.default_rng(seed)
    initial = [rng.normal(size=shape).astype("float32") for shape in shapes]
    total = epochs * steps_per_epoch
    gradients = [[rng.normal(size=shape).astype("float32") for shape in shapes] for _ in range(total)]
    schedule = recipes.ldam_schedule(0.1, epochs, steps_per_epoch)
    rates = [float(schedule(t)) for t in range(total)]

    params = [torch.nn.Parameter(torch.tensor(w)) for w in initial]
    reference = torch.optim.SGD(params, lr=rates[0], momentum=momentum, nesterov=nesterov, weight_decay=l2)
    keras_variables = {name: [keras.Variable(w) for w in initial] for name in ("PyTorchSGD", "keras SGD")}
    optimizers = {"PyTorchSGD": PyTorchSGD(schedule, momentum=momentum, nesterov=nesterov),
                  "keras SGD": keras.optimizers.SGD(schedule, momentum=momentum, nesterov=nesterov)}
    differences = {name: [] for name in optimizers}
    step_differences = {name: [] for name in optimizers}
    for step, (rate, step_gradients) in enumerate(zip(rates, gradients)):
        torch_before = [p.detach().numpy().copy() for p in params]
        for group in reference.param_groups:
            group["lr"] = rate
        for param, g in zip(params, step_gradients):
            param.grad = torch.tensor(g)
        reference.step()
        want = [p.detach().numpy() for p in params]
        torch_step = np.concatenate([(w - b).ravel() for w, b in zip(want, torch_before)])
        for name, optimizer in optimizers.items():
            variables = keras_variables[name]
            before = [v.numpy() for v in variables]
            # The same coupled L2 term as torch's weight_decay: g + l2 * w (w before this step).
            grads = [keras.ops.convert_to_tensor(g + l2 * v.numpy()) for g, v in zip(step_gradients, variables)]
            optimizer.apply(grads, variables)
            differences[name].append(max(float(np.max(np.abs(v.numpy() - w))) for v, w in zip(variables, want)))
            keras_step = np.concatenate([(v.numpy() - b).ravel() for v, b in zip(variables, before)])
            step_differences[name].append(float(np.linalg.norm(keras_step - torch_step) / np.linalg.norm(torch_step)))
    return rates, differences, step_differences


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--output", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    if args.epochs * args.steps_per_epoch < 200:
        parser.error("Expected --epochs x --steps-per-epoch >= 200 (warm-up and 30 steps, then a stretch at the "
                     f"constant rate before the drop). Received: {args.epochs} x {args.steps_per_epoch}")
    try:
        import torch
    except ImportError:
        parser.error("Expected the CPU build of torch (a benchmark-only extra): pip install torch==2.13.0")

    import keras

    total = args.epochs * args.steps_per_epoch
    drop = int(0.8 * total) + 1  # the first step at x0.01 (0-based)
    warmup = max(1, int(round(0.025 * total)))
    cases = []
    for momentum, nesterov, l2 in ((0.9, False, 0.0), (0.9, False, 2e-4), (0.9, True, 2e-4)):
        rates, differences, step_differences = trajectories(args.epochs, args.steps_per_epoch, momentum, nesterov,
                                                            l2)
        row = {"momentum": momentum, "nesterov": nesterov, "l2": l2, "max_abs_weight_difference": {},
               "relative_step_difference": {}}
        for name in differences:
            weights, steps = differences[name], step_differences[name]
            row["max_abs_weight_difference"][name] = float(max(weights))
            row["relative_step_difference"][name] = {
                "warm_up_and_after": float(max(steps[:warmup + 30])),
                "constant_rate_before_the_drop": float(max(steps[warmup + 30:drop - 1])),
                "after_the_drop": float(max(steps[drop - 1:])),
                "per_step": [float(f"{v:.3g}") for v in steps]}
        cases.append(row)
        print(f"momentum {momentum}, nesterov {nesterov}, L2 {l2}: " + "; ".join(
            f"{name}: max |w - w_torch| {row['max_abs_weight_difference'][name]:.2e}, relative step difference "
            f"{r['warm_up_and_after']:.2e} (warm-up + 30 steps), {r['constant_rate_before_the_drop']:.2e} (then, at "
            f"the constant rate), {r['after_the_drop']:.2e} (after the drop)"
            for name, r in row["relative_step_difference"].items()))
    study = {"command": "python -m benchmarks.studies.pytorch_sgd_agrees "
                        f"--epochs {args.epochs} --steps-per-epoch {args.steps_per_epoch} --output {args.output}",
             "machine": _timing.machine(),
             "versions": {"keras": keras.__version__, "torch": torch.__version__},
             "steps": total, "warmup_steps": warmup, "first_step_after_the_drop": drop,
             "learning_rates": [float(f"{r:.6g}") for r in rates], "cases": cases}
    args.output.write_text(json.dumps(study, indent=1) + "\n")


if __name__ == "__main__":
    main()
