"""ResNet-32 training and inference speed: our stack (Keras 3 on TensorFlow) next to a PyTorch reference.

Both stacks train the papers' CIFAR ResNet-32 (LDAM-DRW, option-A zero-pad shortcuts, 464,154 parameters for
10 classes) on the *same* decoded uint8 arrays (random images and labels: speed does not depend on the pixels),
with batch `--batch-size`, SGD momentum 0.9 under the LDAM-DRW schedule, and random crop (pad 4) + horizontal flip:

- ours: what `keras_longtail.recipes.run_training` does for CIFAR-10-LT: `models.resnet32(10)` compiled with
  `SGD(recipes.ldam_schedule(...), momentum=0.9, weight_decay=recipes.WEIGHT_DECAY)`, sparse CE from logits and the
  `ShotAccuracy` metric, trained by `model.fit` on `recipes.training_pipeline` (shuffle, repeat, crop + flip in
  `tf.data`, batch, prefetch); inference is `model.predict`.
- PyTorch: `PyTorchResNet32` below, written here after `models/resnet_cifar.py` of the LDAM-DRW code (NCHW,
  Kaiming-normal init, `F.pad` option-A shortcut), trained by a plain loop (`torch.randperm` shuffling, batched
  crop + flip on tensors, `torch.optim.SGD(momentum=0.9, weight_decay=2e-4)`, the same schedule set per step);
  inference under `torch.inference_mode()` in `eval()` mode.

Three modes: `train_fp32`, `train_bf16` (ours: the `mixed_bfloat16` dtype policy; PyTorch: `torch.autocast("cpu",
torch.bfloat16)`) and `inference` (fp32). Every mode is warmed up first (tracing, first steps; not counted), then
runs `--rounds` rounds, alternating ours, PyTorch, ours, PyTorch ... so that a drift of the machine's speed hits
both sides alike. Each round records steps/s (inference: images/s) and `os.getloadavg()` before and after it; the
report is the median over rounds of ours / PyTorch per mode (> 1: ours is faster). Each round also records the
process CPU seconds it used; `median_cpu_ratio` (PyTorch's CPU seconds / ours) is the steadier figure on a shared
machine, though spinning thread pools count as CPU time too. Each `fit` round includes what a
user pays per epoch (building the `tf.data` iterator); the PyTorch round includes its shuffle.

Two measures keep the comparison fair in one process on a small CPU. (1) Each `fit` call builds a new `tf.data`
iterator (shuffle-buffer refill, a cache that never completes), so the first `STARTUP_STEPS` steps of every round
are timed apart (`startup_seconds`) and steps/s is measured after them, as the PyTorch loop's steady state is.
(2) PyTorch's OpenMP threads spin-wait after each torch round and take CPU from TensorFlow's round that follows;
the script sets `OMP_WAIT_POLICY=PASSIVE` (before torch is imported; an explicit setting in the environment wins)
so that idle OpenMP threads sleep. Without it our fp32 rounds were bimodal (1.95 vs 2.6 steps/s at equal CPU).

The published measurement (the lead's, on a quiet 2-core machine; about 5 minutes, plus ~1 minute of imports and
tracing):

    python -m benchmarks.studies.speed_vs_pytorch --steps 40 --rounds 3 --batch-size 128

writes `benchmarks/results/speed_vs_pytorch.json`. A quick check that both sides run (~1 minute):
`python -m benchmarks.studies.speed_vs_pytorch --steps 3 --rounds 1 --output /tmp/speed.json`.

Paired A/B of two settings of *our* side (same process, alternating rounds; `median_ratio` is A's steps/s over
B's, so < 1 means B is faster, and `median_cpu_ratio` is B's CPU seconds over A's, so < 1 means B needs less CPU):

    python -m benchmarks.studies.speed_vs_pytorch --ab "steps_per_execution=1" "steps_per_execution=8" --steps 40
    python -m benchmarks.studies.speed_vs_pytorch --ab "policy=float32" "policy=mixed_bfloat16"

Settings: `policy` (`float32`, `mixed_bfloat16`), `steps_per_execution` (int), `jit_compile` (`true`/`false`),
`cache` (`true`, the default: the float images are cached in the pipeline as the CIFAR loaders cache theirs;
`false`: converted from uint8 on every pass), `augment` (`element`: the CLI's
per-image crop + flip map; `batched`: the same augmentation vectorized over each batch). Thread pools are process-wide:
compare them as two processes (`--intra-op N --inter-op M`, one run each; `/usr/bin/time -v` or any whole-process
timer).

torch is a benchmark-only extra (`pip install torch`, the CPU build), never needed by the package or its tests.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

# Before torch is imported: idle OpenMP threads sleep instead of spinning into TensorFlow's rounds (see above).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)
NUM_EXAMPLES = 12406  # CIFAR-10-LT IF 100's training set
EPOCHS = 200  # the schedule's length (only the learning-rate values depend on it)
MODES = ("train_fp32", "train_bf16", "inference")
RESNET32_PARAMETERS = 464_154


def make_data(num_examples=NUM_EXAMPLES, seed=0):
    """Random decoded CIFAR-shaped data: (uint8 images (n, 32, 32, 3), int32 labels (n,))."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num_examples,) + IMAGE_SHAPE, dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=num_examples).astype(np.int32)
    return images, labels


# ---------------------------------------------------------------------------------------------------- ours


def parse_setting(text):
    """`"steps_per_execution=8,policy=mixed_bfloat16"` -> keyword arguments of `KerasTrainer`."""
    kinds = {"policy": str, "steps_per_execution": int, "jit_compile": lambda v: v.lower() == "true",
             "cache": lambda v: v.lower() == "true", "augment": str}
    setting = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in kinds or not value:
            raise ValueError(f"Expected settings KEY=VALUE with KEY in {sorted(kinds)}. Received: {item!r}")
        setting[key] = kinds[key](value)
    return setting


def batched_crop_and_flip(images, labels):
    """Random crop (zero pad 4) + horizontal flip of every image of a batch, vectorized (one op per batch)."""
    import tensorflow as tf

    n, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [4, 4], [4, 4], [0, 0]])
    offsets = tf.random.uniform([n, 2], 0, 9, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None]
    cols = offsets[:, 1:] + tf.range(width)[None]
    cropped = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    flip = tf.random.uniform([n]) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(cropped, [2]), cropped), labels


STARTUP_STEPS = 2  # the first steps of each of our `fit` calls, not timed (see KerasTrainer.run)


class KerasTrainer:
    """Our training path (as `recipes.run_training` on CIFAR-10-LT), timed `steps` at a time."""

    def __init__(self, images, labels, batch_size, policy="float32", steps_per_execution=1, jit_compile=False,
                 cache=True, augment="element", seed=0):
        import keras
        import tensorflow as tf

        from keras_longtail import recipes
        from keras_longtail import metrics as lt_metrics
        from keras_longtail import models as lt_models

        self.batch_size = batch_size
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)  # read when the layers are built
        try:
            keras.utils.set_random_seed(seed)
            self.model = lt_models.resnet32(NUM_CLASSES, input_shape=IMAGE_SHAPE,
                                            batch_norm_momentum=recipes.RESNET_BATCH_NORM_MOMENTUM)
        finally:
            keras.config.set_dtype_policy(previous)
        steps_per_epoch = -(-len(images) // batch_size)
        counts = np.bincount(labels, minlength=NUM_CLASSES).tolist()
        self.model.compile(
            optimizer=keras.optimizers.SGD(recipes.ldam_schedule(0.1, EPOCHS, steps_per_epoch), momentum=0.9,
                                           weight_decay=recipes.WEIGHT_DECAY),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[lt_metrics.ShotAccuracy(counts)], steps_per_execution=steps_per_execution,
            jit_compile=jit_compile)
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).map(
            lambda image, label: (tf.cast(image, tf.float32) / 255.0, label))  # the loaders' float [0, 1]
        if cache:
            dataset = dataset.cache()
        if augment == "element":  # the CLI's pipeline: crop + flip per image in `tf.data`
            self.train = recipes.training_pipeline(dataset, len(images), batch_size, augment=True, seed=seed)
        elif augment == "batched":  # the same augmentation as one vectorized map per batch
            self.train = (dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
                          .batch(batch_size).map(batched_crop_and_flip, num_parallel_calls=tf.data.AUTOTUNE)
                          .prefetch(tf.data.AUTOTUNE))
        else:
            raise ValueError(f"Expected `augment` in ['element', 'batched']. Received: augment={augment!r}")
        self.test = (images[: 8 * batch_size].astype(np.float32) / 255.0)

    def run(self, steps):
        """Seconds of `steps` steps of one `fit`, timed after its first `STARTUP_STEPS` steps.

        Each `fit` call starts a new `tf.data` iterator (refilling the shuffle buffer of the whole training set
        and, as the in-memory cache is only kept once a pass completes, decoding again): one-off costs that a
        real run pays once, not every 40 steps. They are left out of the timed window, as the PyTorch loop has
        none; `self.startup_seconds` keeps them. The process CPU seconds of the window go to `self.cpu_seconds`.
        """
        import keras

        marks = {}

        class Clock(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if batch == STARTUP_STEPS:
                    marks["start"], marks["cpu"] = time.perf_counter(), time.process_time()

            def on_train_end(self, logs=None):
                marks["end"], marks["cpu_end"] = time.perf_counter(), time.process_time()

        begin = time.perf_counter()
        self.model.fit(self.train, epochs=1, steps_per_epoch=steps + STARTUP_STEPS, shuffle=False, verbose=0,
                       callbacks=[Clock()])
        self.startup_seconds = marks["start"] - begin
        self.cpu_seconds = marks["cpu_end"] - marks["cpu"]
        return marks["end"] - marks["start"]

    def infer(self, batches):
        """Seconds of `model.predict` over `batches` batches."""
        images = np.resize(self.test, (batches * self.batch_size,) + IMAGE_SHAPE)
        start = time.perf_counter()
        self.model.predict(images, batch_size=self.batch_size, verbose=0)
        return time.perf_counter() - start


# ----------------------------------------------------------------------------------------------- PyTorch


def pytorch_resnet32(num_classes=NUM_CLASSES):
    """The LDAM-DRW CIFAR ResNet-32 (`resnet_cifar.py`, option A) in PyTorch: 464,154 parameters for 10 classes."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class BasicBlock(nn.Module):
        def __init__(self, in_planes, planes, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.pad = (planes - in_planes) // 2 if (stride != 1 or in_planes != planes) else None
            self.stride = stride

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.pad is None:
                shortcut = x
            else:  # option A: subsample, zero-pad the channels (planes // 4 each side when the width doubles)
                shortcut = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
            return F.relu(out + shortcut)

    class ResNet32(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            blocks, in_planes = [], 16
            for planes, stride in ((16, 1), (32, 2), (64, 2)):
                for block in range(5):
                    blocks.append(BasicBlock(in_planes, planes, stride if block == 0 else 1))
                    in_planes = planes
            self.blocks = nn.Sequential(*blocks)
            self.linear = nn.Linear(64, num_classes)
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(module.weight)

        def forward(self, x):
            out = self.blocks(F.relu(self.bn1(self.conv1(x))))
            return self.linear(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))

    return ResNet32()


def _ldam_learning_rate(step, total, peak=0.1):
    """The schedule of `recipes.ldam_schedule` as a plain function (warm-up 2.5 %, x0.01 at 80 %, x0.0001 at 90 %)."""
    warmup = max(1, round(0.025 * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (1.0 if step <= int(0.8 * total) else 0.01 if step <= int(0.9 * total) else 0.0001)


class TorchTrainer:
    """The PyTorch reference loop on the same uint8 arrays, timed `steps` at a time."""

    def __init__(self, images, labels, batch_size, bf16=False, seed=0):
        import torch

        torch.manual_seed(seed)
        self.torch = torch
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.batch_size, self.bf16 = batch_size, bf16
        self.model = pytorch_resnet32()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=2e-4)
        self.total = EPOCHS * -(-len(images) // batch_size)
        self.step, self.order, self.position = 0, torch.randperm(len(images)), 0

    def _batch(self):
        torch = self.torch
        if self.position + self.batch_size > len(self.order):
            self.order, self.position = torch.randperm(len(self.images)), 0
        index = self.order[self.position: self.position + self.batch_size]
        self.position += self.batch_size
        images = self.images[index].float().div_(255.0)
        # Random crop (zero pad 4) and horizontal flip, per image.
        padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
        n = len(index)
        top, left = torch.randint(0, 9, (n,)), torch.randint(0, 9, (n,))
        rows = (top[:, None] + torch.arange(32))[:, None, :, None]
        cols = (left[:, None] + torch.arange(32))[:, None, None, :]
        images = padded[torch.arange(n)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
        flip = torch.rand(n) < 0.5
        images[flip] = images[flip].flip(3)
        return images, self.labels[index]

    def run(self, steps):
        torch = self.torch
        self.model.train()
        start = time.perf_counter()
        for _ in range(steps):
            images, labels = self._batch()
            for group in self.optimizer.param_groups:
                group["lr"] = _ldam_learning_rate(self.step, self.total)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                loss = torch.nn.functional.cross_entropy(self.model(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
        return time.perf_counter() - start

    def infer(self, batches):
        torch = self.torch
        self.model.eval()
        images = self.images[: 8 * self.batch_size].float().div_(255.0)
        start = time.perf_counter()
        with torch.inference_mode():
            for b in range(batches):
                first = (b % 8) * self.batch_size
                self.model(images[first: first + self.batch_size])
        return time.perf_counter() - start


# -------------------------------------------------------------------------------------------------- rounds


def _round(side, trainer, mode, steps, batch_size):
    before, cpu = os.getloadavg(), time.process_time()
    seconds = trainer.infer(steps) if mode == "inference" else trainer.run(steps)
    cpu = time.process_time() - cpu
    if mode != "inference" and getattr(trainer, "cpu_seconds", None) is not None:
        cpu = trainer.cpu_seconds  # the timed window only (see KerasTrainer.run)
    rate = steps * batch_size / seconds if mode == "inference" else steps / seconds
    return {"side": side, "seconds": round(seconds, 3), ("images_per_s" if mode == "inference" else
                                                         "steps_per_s"): round(rate, 3),
            "cpu_seconds": round(cpu, 3), "cpu_ms_per_step": round(1000 * cpu / steps, 1),
            **({"startup_seconds": round(trainer.startup_seconds, 3)}
               if mode != "inference" and hasattr(trainer, "startup_seconds") else {}),
            "loadavg_before": [round(v, 2) for v in before], "loadavg_after": [round(v, 2) for v in
                                                                                 os.getloadavg()]}


def _rate(record):
    return record.get("steps_per_s", record.get("images_per_s"))


def compare(sides, modes, steps, rounds, batch_size, warmup_steps=2, log=print):
    """Alternating rounds of `sides` ({name: {mode: trainer}}, two names) per mode.

    Returns {mode: {"rounds": [...], "median_ratio": median over rounds of first / second side's rate,
    "median_cpu_ratio": median of second / first side's process CPU seconds (> 1: the first needs less CPU)}}.
    """
    names = list(sides)
    report = {}
    for mode in modes:
        for name in names:  # warm-up: tracing, first steps, thread pools
            trainer = sides[name][mode]
            trainer.infer(warmup_steps) if mode == "inference" else trainer.run(warmup_steps)
        records, ratios, cpu_ratios = [], [], []
        for r in range(rounds):
            pair = [_round(name, sides[name][mode], mode, steps, batch_size) for name in names]
            records.extend(dict(record, round=r) for record in pair)
            ratios.append(_rate(pair[0]) / _rate(pair[1]))
            cpu_ratios.append(pair[1]["cpu_seconds"] / max(pair[0]["cpu_seconds"], 1e-9))
            log(f"[speed] {mode} round {r}: " + ", ".join(f"{p['side']} {_rate(p):.3f}" for p in pair)
                + f" ({'img' if mode == 'inference' else 'steps'}/s), ratio {ratios[-1]:.3f}, CPU-time ratio "
                f"{cpu_ratios[-1]:.3f}, load {pair[0]['loadavg_before'][0]:.1f}")
        report[mode] = {"rounds": records, "ratios": [round(x, 3) for x in ratios],
                        "median_ratio": round(statistics.median(ratios), 3),
                        "cpu_ratios": [round(x, 3) for x in cpu_ratios],
                        "median_cpu_ratio": round(statistics.median(cpu_ratios), 3),
                        **{f"median_{name}": round(statistics.median(_rate(x) for x in records
                                                                      if x["side"] == name), 3)
                           for name in names}}
    return report


def _configure_threads(intra_op, inter_op):
    import tensorflow as tf

    if intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.speed_vs_pytorch",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="steps (inference: batches) per round (default: 40)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side and mode (default: 3)")
    parser.add_argument("--batch-size", type=int, default=128, help="default: 128")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {list(MODES)}")
    parser.add_argument("--num-examples", type=int, default=NUM_EXAMPLES,
                        help=f"training images (default: {NUM_EXAMPLES}, CIFAR-10-LT IF 100)")
    parser.add_argument("--ab", nargs=2, metavar=("A", "B"), default=None,
                        help="compare two settings of our side instead of ours vs PyTorch (training, fp32 "
                             "unless a setting says policy=...)")
    parser.add_argument("--intra-op", type=int, default=0, help="TF intra-op threads (default: TF's choice)")
    parser.add_argument("--inter-op", type=int, default=0, help="TF inter-op threads (default: TF's choice)")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch.set_num_threads for the PyTorch side (default: torch's choice, the cores)")
    parser.add_argument("--output", default=None,
                        help="JSON path (default: benchmarks/results/speed_vs_pytorch.json, or "
                             "speed_ab.json with --ab)")
    args = parser.parse_args(argv)
    for name in ("steps", "rounds", "batch_size", "num_examples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in modes):
        parser.error(f"unknown modes {modes}; known: {list(MODES)}")
    _configure_threads(args.intra_op, args.inter_op)
    images, labels = make_data(args.num_examples)
    result = {"batch_size": args.batch_size, "steps_per_round": args.steps, "rounds": args.rounds,
              "num_examples": args.num_examples,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "command": " ".join(["python -m benchmarks.studies.speed_vs_pytorch"]
                                  + list(sys.argv[1:] if argv is None else argv)),
              "intra_op": args.intra_op or "default", "inter_op": args.inter_op or "default",
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    import keras
    import tensorflow as tf

    result["versions"] = {"tensorflow": tf.__version__, "keras": keras.__version__}
    if args.ab:
        a, b = (parse_setting(s) for s in args.ab)
        sides = {f"A: {args.ab[0]}": {"train": KerasTrainer(images, labels, args.batch_size, **a)},
                 f"B: {args.ab[1]}": {"train": KerasTrainer(images, labels, args.batch_size, **b)}}
        report = compare(sides, ["train"], args.steps, args.rounds, args.batch_size)
        result.update(ab={"A": args.ab[0], "B": args.ab[1]}, modes=report,
                      note="median_ratio = A / B steps/s per round pair (< 1: B is faster); median_cpu_ratio = B / A "
                           "process CPU seconds (< 1: B needs less CPU)")
        output = pathlib.Path(args.output or RESULTS / "speed_ab.json")
    else:
        import torch

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        result["versions"]["torch"] = torch.__version__
        result["torch_threads"] = torch.get_num_threads()
        ours, theirs = {}, {}
        for mode in modes:
            policy = "mixed_bfloat16" if mode == "train_bf16" else "float32"
            ours[mode] = KerasTrainer(images, labels, args.batch_size, policy=policy)
            theirs[mode] = TorchTrainer(images, labels, args.batch_size, bf16=mode == "train_bf16")
        counts = {"ours": sum(int(np.prod(w.shape)) for w in ours[modes[0]].model.trainable_weights),
                  "pytorch": sum(p.numel() for p in theirs[modes[0]].model.parameters())}
        result["parameters"] = counts
        report = compare({"ours": ours, "pytorch": theirs}, modes, args.steps, args.rounds, args.batch_size)
        result.update(modes=report, note="median_ratio = ours / PyTorch rate per round pair (> 1: ours faster); "
                                         "rates are steps/s (training) or images/s (inference)")
        output = pathlib.Path(args.output or RESULTS / "speed_vs_pytorch.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    summary = ", ".join(f"{mode} {r['median_ratio']}" for mode, r in report.items())
    print(f"[speed] median ratios: {summary}; written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
