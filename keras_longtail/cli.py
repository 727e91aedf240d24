"""The `keras-longtail` command line (also `python -m keras_longtail`).

`keras-longtail train` trains a model on a long-tailed data set with one of the
toolkit's methods and prints the Many / Medium / Few accuracy table; `--output`
also writes it as JSON. `run_training(...)` is the same job as a function, for
benchmarks and notebooks.
"""

import argparse
import json
import math
import sys
import time

import keras

DATASETS = {
    # name: (loader, default imbalance factor, default model, default epochs, default batch size)
    "digits-lt": ("digits", 20, "mlp", 40, 32),
    "cifar10-lt": ("cifar10", 100, "resnet32", 200, 128),
    "cifar100-lt": ("cifar100", 100, "resnet32", 200, 128),
    "fashion-mnist-lt": ("fashion_mnist", 100, "resnet32", 200, 128),
}
METHODS = ("ce",)


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-longtail", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train and print Many/Medium/Few accuracy")
    train.add_argument("--dataset", choices=sorted(DATASETS), default="digits-lt",
                       help="long-tailed data set (default: digits-lt, embedded, no download)")
    train.add_argument("--imbalance-factor", type=float, default=None,
                       help="n_max / n_min of the training split (default: 20 for digits-lt, else 100)")
    train.add_argument("--method", choices=METHODS, default="ce", help="training method (default: ce)")
    train.add_argument("--model", choices=("auto", "resnet32", "mlp"), default="auto",
                       help="network (default: mlp for digits-lt, resnet32 otherwise)")
    train.add_argument("--epochs", type=int, default=None,
                       help="training epochs (default: 40 for digits-lt, 200 otherwise)")
    train.add_argument("--batch-size", type=int, default=None, help="default: 32 digits-lt, 128 otherwise")
    train.add_argument("--learning-rate", type=float, default=None,
                       help="peak learning rate (default: 0.05 with Adam for digits-lt, 0.1 with SGD otherwise)")
    train.add_argument("--weight-decay", type=float, default=None,
                       help="decoupled (Keras) weight decay; default 2e-3 for SGD = PyTorch's coupled 2e-4 "
                            "at momentum 0.9, 0 for digits-lt")
    train.add_argument("--steps-per-epoch", type=int, default=None,
                       help="cap the steps of each epoch (smoke runs); default: one pass over the data")
    train.add_argument("--data-dir", default=None, help="directory holding the data set files")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--output", default=None, help="write the results as JSON to this path")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, help="Keras verbosity (default: 2)")
    return parser


def main(argv=None):
    """Entry point of `keras-longtail`; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "train":
        try:
            results = run_training(**{k: v for k, v in vars(args).items() if k not in ("command", "output")})
        except (ValueError, TypeError, FileNotFoundError) as error:
            print(f"keras-longtail: error: {error}", file=sys.stderr)
            return 2
        print(format_shot_table(results))
        if args.output:
            with open(args.output, "w") as f:
                json.dump(results, f, indent=2)
            print(f"results written to {args.output}")
    return 0


def run_training(dataset="digits-lt", imbalance_factor=None, method="ce", model="auto", epochs=None,
                 batch_size=None, learning_rate=None, weight_decay=None, steps_per_epoch=None,
                 data_dir=None, seed=0, verbose=2, save_model=None):
    """Trains one model as `keras-longtail train` does and returns the results dict.

    `save_model` names a `.keras` path where the trained model is saved.

    Returns:
        A JSON-serializable dict: the configuration, `class_counts`, `accuracy`
        (`overall`, and `many`/`medium`/`few` for the splits that have classes, in %),
        `per_class_accuracy` (%), `shot_classes` and `train_seconds`.

    Example:

    ```python
    results = run_training("digits-lt", epochs=5, verbose=0)
    results["accuracy"]["overall"]
    ```
    """
    from keras_longtail import data as lt_data
    from keras_longtail import metrics as lt_metrics
    from keras_longtail import models as lt_models

    if dataset not in DATASETS:
        raise ValueError(f"Expected `dataset` in {sorted(DATASETS)}. Received: dataset={dataset!r}")
    if method not in METHODS:
        raise ValueError(f"Expected `method` in {list(METHODS)}. Received: method={method!r}")
    loader, default_if, default_model, default_epochs, default_batch = DATASETS[dataset]
    imbalance_factor = default_if if imbalance_factor is None else imbalance_factor
    model_name = default_model if model == "auto" else model
    epochs = default_epochs if epochs is None else epochs
    batch_size = default_batch if batch_size is None else batch_size
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"Expected `{name}` >= 1. Received: {name}={value}")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError(f"Expected `steps_per_epoch` >= 1. Received: steps_per_epoch={steps_per_epoch}")
    keras.utils.set_random_seed(seed)

    if loader == "digits":
        loaded = lt_data.load_digits_lt(imbalance_factor)
    elif loader == "fashion_mnist":
        loaded = lt_data.load_fashion_mnist_lt(imbalance_factor, data_dir=data_dir)
    else:
        loaded = lt_data.load_cifar_lt(loader, imbalance_factor, data_dir=data_dir)
    num_classes = loaded.num_classes
    image_shape = tuple(loaded.train.element_spec[0].shape)

    if model_name == "mlp":
        network = lt_models.mlp(num_classes, image_shape, hidden_units=(64,))
    else:
        network = lt_models.resnet32(num_classes, input_shape=image_shape)

    steps = math.ceil(loaded.num_train / batch_size)
    if steps_per_epoch is not None:
        steps = min(steps, steps_per_epoch)
    if loader == "digits":
        learning_rate = 0.05 if learning_rate is None else learning_rate
        weight_decay = 0.0 if weight_decay is None else weight_decay
        optimizer = keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps),
            weight_decay=weight_decay or None)
        augment = False
    else:
        learning_rate = 0.1 if learning_rate is None else learning_rate
        weight_decay = 2e-3 if weight_decay is None else weight_decay
        optimizer = keras.optimizers.SGD(
            _ldam_schedule(learning_rate, epochs, steps), momentum=0.9, weight_decay=weight_decay or None)
        augment = True

    train = _training_pipeline(loaded.train, loaded.num_train, batch_size, augment, seed)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    network.compile(optimizer=optimizer, loss=loss, metrics=[lt_metrics.ShotAccuracy(loaded.class_counts)])

    start = time.perf_counter()
    network.fit(train, epochs=epochs, steps_per_epoch=steps, shuffle=False, verbose=verbose)
    train_seconds = time.perf_counter() - start
    if save_model:
        network.save(save_model)

    shot = lt_metrics.ShotAccuracy(loaded.class_counts)
    for images, labels in loaded.test.batch(512):
        shot.update_state(labels, network(images, training=False))
    accuracy = {key.split("_", 1)[1]: round(100 * float(value), 2) for key, value in shot.result().items()}
    splits = lt_data.shot_splits(loaded.class_counts)
    return {
        "dataset": dataset,
        "imbalance_factor": imbalance_factor,
        "method": method,
        "model": model_name,
        "epochs": epochs,
        "batch_size": batch_size,
        "steps_per_epoch": steps,
        "learning_rate": learning_rate,
        "weight_decay": weight_decay,
        "seed": seed,
        "class_counts": loaded.class_counts,
        "shot_classes": {k: len(v) for k, v in splits._asdict().items()},
        "accuracy": accuracy,
        "per_class_accuracy": [round(100 * float(a), 2) for a in shot.per_class()],
        "train_seconds": round(train_seconds, 1),
    }


def format_shot_table(results):
    """The Many / Medium / Few table printed by `keras-longtail train`."""
    title = (f"{results['dataset']} (imbalance factor {results['imbalance_factor']:g}), "
             f"method {results['method']}, {results['model']}, {results['epochs']} epochs, "
             f"{results['train_seconds']} s")
    rows = [f"{'split':<8} {'classes':>7} {'accuracy %':>10}"]
    classes = dict(results["shot_classes"], overall=len(results["class_counts"]))
    for split in ("overall", "many", "medium", "few"):
        value = results["accuracy"].get(split)
        shown = f"{value:10.2f}" if value is not None else f"{'absent':>10}"
        rows.append(f"{split:<8} {classes[split]:>7} {shown}")
    return "\n".join([title, "-" * len(rows[0])] + rows)


def _ldam_schedule(learning_rate, epochs, steps_per_epoch):
    """The LDAM-DRW CIFAR recipe scaled to `epochs`: linear warm-up over the first
    2.5% of epochs (5 of 200), then x0.01 after 80% (160 of 200) and x0.0001 after 90%."""
    total = epochs * steps_per_epoch
    warmup = int(round(0.025 * epochs)) * steps_per_epoch
    boundaries = [int(0.8 * total), int(0.9 * total)]
    decay = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [learning_rate, learning_rate * 0.01, learning_rate * 0.0001])
    if warmup == 0:
        return decay
    return _Warmup(decay, warmup, learning_rate)


class _Warmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then the `after` schedule."""

    def __init__(self, after, warmup_steps, peak):
        self.after, self.warmup_steps, self.peak = after, warmup_steps, peak

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        ramp = self.peak * (step + 1.0) / self.warmup_steps
        return keras.ops.where(step < self.warmup_steps, ramp, self.after(step))

    def get_config(self):
        return {"after": keras.saving.serialize_keras_object(self.after),
                "warmup_steps": self.warmup_steps, "peak": self.peak}


def _training_pipeline(dataset, num_examples, batch_size, augment, seed):
    import tensorflow as tf

    dataset = dataset.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True).repeat()
    if augment:
        def crop_and_flip(image, label):
            height, width = image.shape[0], image.shape[1]
            padded = tf.image.resize_with_crop_or_pad(image, height + 8, width + 8)
            image = tf.image.random_crop(padded, tf.shape(image))
            return tf.image.random_flip_left_right(image), label

        dataset = dataset.map(crop_and_flip, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
