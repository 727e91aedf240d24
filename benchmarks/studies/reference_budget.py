"""CE + WD on CIFAR-10-LT at the papers' 200 epochs, in the PyTorch reference: what the 60-epoch budget leaves.

Our suite runs every method at 60 epochs on the CPU (`benchmarks/results/cifar10-lt-e60`); the papers train 200.
TensorFlow cannot run on the accelerator machines lent to this project (their image has PyTorch but no
TensorFlow, and its GPU wheel is far over what may be carried to them), so this study answers "what would CE + WD
reach at 200 epochs?" with the PyTorch reference of `speed_vs_pytorch` (the LDAM-DRW ResNet-32, option A), trained
on *our* decoded arrays with *our* recipe, at 60 epochs too, so that the reference can be checked against our own
60-epoch seeds before its 200-epoch figure is read as ours:

- data: exactly what `keras_longtail.data.load_cifar_lt("cifar10", 100, data_dir)` yields (12,406 training images,
  the first n_i of each class in file order; the balanced 10,000-image test set), exported once as uint8 arrays;
  pixels / 255, no mean subtraction;
- input: the training set shuffled each epoch and repeated, cut into batches of 128 across epoch boundaries (97
  steps per epoch; `recipes.training_pipeline`'s shuffle + repeat + batch); random crop after 4-pixel zero padding
  and a random horizontal flip per image (`recipes.crop_and_flip`);
- optimizer: Keras' SGD form (m <- 0.9 m - lr g; w <- w + m), with Keras' decoupled weight decay
  `recipes.WEIGHT_DECAY` (w <- w - lr * wd * w, before the update) on every trainable tensor, as `run_training`'s
  `SGD(ldam_schedule(0.1, ...), momentum=0.9, weight_decay=WEIGHT_DECAY)` does; the schedule is `ldam_schedule`
  (warm-up over 2.5 % of the steps, x0.01 at 80 %, x0.0001 at 90 %) set per step;
- loss: softmax cross-entropy, batch mean; batch norm with PyTorch's momentum 0.1 (Keras' 0.9).

What differs from our stack: the framework's kernels (on a GPU, cuDNN with TF32 convolutions, PyTorch's default),
the random streams, the initializer (LDAM-DRW's `kaiming_normal_` against Keras' truncated `he_normal`) and batch
norm's epsilon (PyTorch's 1e-5 against Keras' 1e-3). The 60-epoch rows say whether these matter.

Three subcommands (torch is a benchmark-only extra; the export needs TensorFlow, the training does not):

    # here, with the package installed: our loader's arrays, once (69 MB raw, 53 MB as .npz.xz)
    python -m benchmarks.studies.reference_budget export --data-dir /tmp/cifar10-jpeg --output .device/cifar10_lt.npz.xz
    # wherever torch and (best) a GPU are: one process per (epochs, seed), N at a time on the one device
    python -m benchmarks.studies.reference_budget train --data .device/cifar10_lt.npz.xz --epochs 200,60 \\
        --seeds 0,1,2 --parallel 6 --output-dir /tmp/reference
    # the published JSON: mean +- std per budget, beside our own 60-epoch CE + WD seeds
    python -m benchmarks.studies.reference_budget summarize --output-dir /tmp/reference \\
        --output benchmarks/results/reference_budget_cifar10.json  # --replace to replace it

Time on one H200 (eager PyTorch, fp32): the jobs share the device at ≈ 139 steps/s in all, however many run at
once (no CUDA MPS), so 3 seeds at 60 and 200 epochs (75,660 steps) take ≈ 545 s plus start-up, over the 540 s that
one lent command ran in the published measurement: its 200-epoch jobs stopped at epoch 190. Size a lease from that.

Each training job writes `<output-dir>/ce-wd-e<epochs>-seed<seed>.json` after every evaluation (every
`--eval-every` epochs and at the end), so a job stopped early leaves its curve so far (`"finished": false`). Each
evaluation also records the accuracy with the training prior undone (`"accuracy_prior_undone"`: logits − log of
the class frequencies, the post-hoc logit adjustment of Menon et al. 2021 at τ = 1), CE's own counterpart of the
GBG implied-prior study's corrections; the published jobs ran before it was recorded.
"""

import argparse
import io
import json
import lzma
import os
import pathlib
import statistics
import subprocess
import sys
import time

import numpy as np

from benchmarks.studies.speed_vs_pytorch import _ldam_learning_rate, pytorch_resnet32

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]  # where `python -m benchmarks...` resolves
BATCH_SIZE = 128
PEAK_LEARNING_RATE = 0.1  # recipes.SGD_LEARNING_RATE
MOMENTUM = 0.9  # recipes.SGD_MOMENTUM
WEIGHT_DECAY = 5e-3  # recipes.WEIGHT_DECAY (decoupled, Keras' form); tests check it against the recipe
MANY, FEW = 100, 20  # data.shot_splits' thresholds


# ----------------------------------------------------------------------------------------------- export (TF side)


def export(data_dir, output, imbalance_factor=100):
    """Writes our loader's CIFAR-10-LT arrays (uint8 images, int64 labels, class counts) as an `.npz` in xz."""
    from keras_longtail import data as lt_data

    loaded = lt_data.load_cifar_lt("cifar10", imbalance_factor, data_dir=data_dir)
    arrays = {}
    for split, dataset in (("train", loaded.train), ("test", loaded.test)):
        images, labels = [], []
        for image, label in dataset.batch(1024).as_numpy_iterator():
            images.append(np.rint(image * 255.0).astype(np.uint8))  # the loader's float32 = uint8 / 255 exactly
            labels.append(label.astype(np.int64))
        arrays[f"{split}_x"], arrays[f"{split}_y"] = np.concatenate(images), np.concatenate(labels)
    if not np.array_equal(np.bincount(arrays["train_y"], minlength=10), loaded.class_counts):
        raise RuntimeError(f"Expected the training labels to count {loaded.class_counts} per class.")
    arrays["class_counts"] = np.asarray(loaded.class_counts, np.int64)
    output = pathlib.Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(output, "wb", preset=6) as file:  # xz: 0.77 of the raw bytes, zlib's .npz only 0.91
        np.savez(file, **arrays)
    return {key: list(value.shape) for key, value in arrays.items()}


def load_arrays(path):
    """The arrays `export` wrote (an `.npz` inside an xz stream), as a dict of numpy arrays."""
    with lzma.open(path, "rb") as file:
        with np.load(io.BytesIO(file.read())) as arrays:
            return {key: arrays[key] for key in arrays.files}


# ----------------------------------------------------------------------------------------------- training (torch)


class BatchStream:
    """Indices of a shuffled, repeated training set cut into batches across epoch boundaries.

    What `dataset.shuffle(n).repeat().batch(b)` yields: each pass over the data is a fresh permutation, and a batch
    may take its last examples from the next pass. `permutation(n)` returns a permutation of `range(n)`.
    """

    def __init__(self, num_examples, batch_size, permutation):
        self.num_examples, self.batch_size, self.permutation = num_examples, batch_size, permutation
        self.buffer = np.zeros(0, np.int64)

    def next(self):
        while len(self.buffer) < self.batch_size:
            self.buffer = np.concatenate([self.buffer, np.asarray(self.permutation(self.num_examples), np.int64)])
        batch, self.buffer = self.buffer[:self.batch_size], self.buffer[self.batch_size:]
        return batch


def per_class_accuracy(predicted, labels, num_classes):
    """The fraction of each class's examples predicted as that class."""
    return [float((predicted[labels == c] == c).mean()) for c in range(num_classes)]


def shot_accuracies(per_class, class_counts):
    """Overall (mean over classes: the test set is balanced), Many, Medium and Few accuracy in %."""
    per_class, counts = np.asarray(per_class, np.float64), np.asarray(class_counts)
    result = {"overall": float(per_class.mean())}
    for name, members in (("many", counts > MANY), ("medium", (counts >= FEW) & (counts <= MANY)),
                          ("few", counts < FEW)):
        result[name] = float(per_class[members].mean()) if members.any() else None
    return {key: (round(100.0 * value, 2) if value is not None else None) for key, value in result.items()}


def crop_and_flip(batch, generator):
    """`recipes.crop_and_flip` on a uint8 NCHW batch, on its device: pixels / 255, zero-pad 4, a random 32 x 32 crop
    and a random horizontal flip per image, drawn from the torch `generator`."""
    import torch

    n, channels, height, width = batch.shape
    device = batch.device
    padded = torch.nn.functional.pad(batch.float().div_(255.0), (4, 4, 4, 4))
    top = torch.randint(0, 9, (n,), device=device, generator=generator)
    left = torch.randint(0, 9, (n,), device=device, generator=generator)
    flip = torch.rand(n, device=device, generator=generator) < 0.5
    rows = (top[:, None] + torch.arange(height, device=device))[:, None, :, None]
    columns = torch.arange(width, device=device)
    columns = torch.where(flip[:, None], left[:, None] + width - 1 - columns, left[:, None] + columns)[:, None, None, :]
    return padded[torch.arange(n, device=device)[:, None, None, None],
                  torch.arange(channels, device=device)[None, :, None, None], rows, columns]


def train_job(data, epochs, seed, output_dir, eval_every=10, device=None, max_steps=None):
    """Trains the reference ResNet-32 with CE + WD for `epochs` and writes its JSON; returns the record."""
    import torch

    arrays = load_arrays(data)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.backends.cudnn.benchmark = True
    images = torch.from_numpy(arrays["train_x"]).permute(0, 3, 1, 2).contiguous().to(device)  # uint8 NCHW
    labels = torch.from_numpy(arrays["train_y"]).to(device)
    test_x = torch.from_numpy(arrays["test_x"]).permute(0, 3, 1, 2).contiguous().to(device)
    test_y = arrays["test_y"]
    counts = arrays["class_counts"]
    num_classes = len(counts)
    steps_per_epoch = -(-len(labels) // BATCH_SIZE)
    total = epochs * steps_per_epoch
    generator = torch.Generator(device="cpu").manual_seed(seed)
    stream = BatchStream(len(labels), BATCH_SIZE, lambda n: torch.randperm(n, generator=generator).numpy())
    augment_generator = torch.Generator(device=device).manual_seed(seed + 1)

    model = pytorch_resnet32(num_classes).to(device)
    parameters = [p for p in model.parameters() if p.requires_grad]
    velocities = [torch.zeros_like(p) for p in parameters]

    log_prior = torch.log(torch.as_tensor(counts / counts.sum(), dtype=torch.float32, device=device))

    def evaluate():
        """Per-class accuracy as trained, and with the training prior undone (logits - log prior)."""
        model.eval()
        predictions, adjusted = [], []
        with torch.inference_mode():
            for start in range(0, len(test_x), 1000):
                logits = model(test_x[start:start + 1000].float().div_(255.0))
                predictions.append(logits.argmax(1).cpu().numpy())
                adjusted.append((logits - log_prior).argmax(1).cpu().numpy())
        model.train()
        return [per_class_accuracy(np.concatenate(p), test_y, num_classes) for p in (predictions, adjusted)]

    record = {"study": "reference_budget", "method": "ce + wd (pytorch reference)", "epochs": epochs, "seed": seed,
              "batch_size": BATCH_SIZE, "steps_per_epoch": steps_per_epoch, "weight_decay": WEIGHT_DECAY,
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "class_counts": counts.tolist(), "curve": [], "finished": False}
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"ce-wd-e{epochs}-seed{seed}.json"
    start, step, running = time.perf_counter(), 0, []
    model.train()
    for epoch in range(1, epochs + 1):
        for _ in range(steps_per_epoch):
            if max_steps is not None and step >= max_steps:
                break
            index = torch.from_numpy(stream.next()).to(device)
            logits = model(crop_and_flip(images[index], augment_generator))
            loss = torch.nn.functional.cross_entropy(logits, labels[index])
            gradients = torch.autograd.grad(loss, parameters)
            learning_rate = _ldam_learning_rate(step, total, PEAK_LEARNING_RATE)
            with torch.no_grad():  # Keras: decoupled decay first, then m <- 0.9 m - lr g; w <- w + m
                torch._foreach_mul_(parameters, 1.0 - learning_rate * WEIGHT_DECAY)
                torch._foreach_mul_(velocities, MOMENTUM)
                torch._foreach_add_(velocities, gradients, alpha=-learning_rate)
                torch._foreach_add_(parameters, velocities)
            running.append(loss.detach())
            step += 1
        if epoch % eval_every == 0 or epoch == epochs or (max_steps is not None and step >= max_steps):
            per_class, per_class_adjusted = evaluate()
            train_loss = float(torch.stack(running).mean()) if running else None
            running = []
            record["curve"].append({"epoch": epoch, "train_loss": train_loss, "seconds": time.perf_counter() - start,
                                    **shot_accuracies(per_class, counts),
                                    "prior_undone": shot_accuracies(per_class_adjusted, counts)})
            record.update(per_class=[round(100.0 * v, 2) for v in per_class],
                          accuracy=shot_accuracies(per_class, counts),
                          accuracy_prior_undone=shot_accuracies(per_class_adjusted, counts),
                          train_seconds=round(time.perf_counter() - start, 1), steps=step,
                          finished=epoch == epochs and max_steps is None)
            path.write_text(json.dumps(record, indent=1) + "\n")
            print(f"[reference] e{epochs} seed {seed}: epoch {epoch}, loss {train_loss:.3f}, "
                  f"accuracy {record['accuracy']['overall']:.2f}, {record['train_seconds']:.0f} s", flush=True)
        if max_steps is not None and step >= max_steps:
            break
    return record


def run_jobs(data, epochs_list, seeds, output_dir, parallel, eval_every, max_steps=None):
    """Runs every (epochs, seed) as its own process, `parallel` at a time (longest budgets first)."""
    jobs = [(e, s) for e in sorted(epochs_list, reverse=True) for s in seeds]
    running, failures = [], []
    while jobs or running:
        while jobs and len(running) < max(1, parallel):
            epochs, seed = jobs.pop(0)
            command = [sys.executable, "-m", "benchmarks.studies.reference_budget", "train", "--data", str(data),
                       "--epochs", str(epochs), "--seeds", str(seed), "--output-dir", str(output_dir),
                       "--eval-every", str(eval_every)] + ([] if max_steps is None else ["--max-steps", str(max_steps)])
            running.append(((epochs, seed), subprocess.Popen(command, cwd=REPOSITORY)))
        time.sleep(1.0)
        for job in list(running):
            if job[1].poll() is not None:
                running.remove(job)
                if job[1].returncode != 0:
                    failures.append(job[0])
    return failures


def summarize(output_dir, output, ours_dir=RESULTS / "cifar10-lt-e60", train_command=None):
    """Mean +- std of the reference jobs per budget, beside our own 60-epoch CE + WD seeds.

    A job stopped before its last epoch (a lease's time limit) is summarized at its last evaluation, and the
    budget's entry says so (`"finished": false`, `"last_epoch"`); budgets whose jobs stopped at different epochs are
    refused rather than averaged.
    """
    records = [json.loads(p.read_text()) for p in sorted(pathlib.Path(output_dir).glob("ce-wd-e*-seed*.json"))]
    if not records:
        raise FileNotFoundError(f"Expected ce-wd-e*-seed*.json files in {output_dir}. Received: none.")
    summary = {"study": "reference_budget", "train_command": train_command, "reference": {}, "ours": {},
               "runs": records}
    for epochs in sorted({r["epochs"] for r in records}):
        runs = [r for r in records if r["epochs"] == epochs and r["curve"]]
        last = {r["curve"][-1]["epoch"] for r in runs}
        if len(last) != 1:
            raise ValueError(f"Expected the e{epochs} jobs to stop at one epoch. Received: last epochs {sorted(last)}")
        summary["reference"][f"e{epochs}"] = {**_mean_std(runs), "last_epoch": last.pop(),
                                               "finished": all(r["finished"] for r in runs)}
    ours = [json.loads(p.read_text()) for p in sorted(pathlib.Path(ours_dir).glob("ce-seed*.json"))]
    if ours:
        summary["ours"]["e60"] = {**_mean_std(ours), "last_epoch": 60, "finished": True}
    output = pathlib.Path(output)
    output.write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _mean_std(records):
    result = {"seeds": [r["seed"] for r in records]}
    for key in ("overall", "many", "medium"):
        values = [r["accuracy"][key] for r in records]
        result[key] = round(statistics.mean(values), 2)
        result[f"{key}_std"] = round(statistics.stdev(values), 2) if len(values) > 1 else None
    if all("accuracy_prior_undone" in r for r in records):  # jobs from before it was recorded have none
        undone = [r["accuracy_prior_undone"]["overall"] for r in records]
        result["overall_prior_undone"] = round(statistics.mean(undone), 2)
    per_class = [r["per_class"] if "per_class" in r else r["per_class_accuracy"] for r in records]  # ours: the latter
    result["per_class"] = [round(statistics.mean(column), 1) for column in zip(*per_class)]
    return result


def _integers(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"Expected comma-separated integers. Received: {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"Expected comma-separated integers >= 0. Received: {text!r}")
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.reference_budget",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    exporting = commands.add_parser("export", help="write our loader's CIFAR-10-LT arrays to an .npz.xz")
    exporting.add_argument("--data-dir", required=True)
    exporting.add_argument("--output", required=True)
    training = commands.add_parser("train", help="train the PyTorch reference (one process per job)")
    training.add_argument("--data", required=True, help="the .npz.xz that `export` wrote")
    training.add_argument("--epochs", type=_integers, default=[200])
    training.add_argument("--seeds", type=_integers, default=[0])
    training.add_argument("--output-dir", required=True)
    training.add_argument("--parallel", type=int, default=0,
                          help="jobs at a time as separate processes (default 0: one after another here)")
    training.add_argument("--eval-every", type=int, default=10)
    training.add_argument("--max-steps", type=int, default=None, help="stop each job after this many steps (checks)")
    summarizing = commands.add_parser("summarize", help="mean +- std per budget, beside our e60 seeds")
    summarizing.add_argument("--output-dir", required=True)
    summarizing.add_argument("--output", default=str(RESULTS / "reference_budget_cifar10.json"))
    summarizing.add_argument("--train-command", default=None, help="the `train` command that made the jobs, recorded")
    summarizing.add_argument("--replace", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)

    if args.command == "export":
        if not os.path.isdir(args.data_dir):
            parser.error(f"Expected --data-dir to be a directory. Received: --data-dir={args.data_dir}")
        print(json.dumps(export(args.data_dir, args.output)))
    elif args.command == "train":
        if not os.path.isfile(args.data):
            parser.error(f"Expected --data to name the .npz.xz that `export` wrote. Received: --data={args.data}")
        if args.eval_every < 1:
            parser.error(f"Expected --eval-every >= 1. Received: --eval-every={args.eval_every}")
        if min(args.epochs) < 1:
            parser.error(f"Expected every --epochs >= 1. Received: --epochs={args.epochs}")
        if args.parallel > 0:
            failures = run_jobs(args.data, args.epochs, args.seeds, args.output_dir, args.parallel, args.eval_every,
                                args.max_steps)
            if failures:
                sys.exit(f"[reference] failed jobs (epochs, seed): {failures}")
        else:
            for epochs in sorted(args.epochs, reverse=True):
                for seed in args.seeds:
                    train_job(args.data, epochs, seed, args.output_dir, args.eval_every, max_steps=args.max_steps)
    else:
        if os.path.exists(args.output) and not args.replace:
            parser.error(f"Expected --output to name a new file (or --replace to replace it). "
                         f"Received: --output={args.output}, which exists")
        summary = summarize(args.output_dir, args.output, train_command=args.train_command)
        print(json.dumps({"reference": summary["reference"], "ours": summary["ours"]}, indent=1))


if __name__ == "__main__":
    main()
