"""The `keras-longtail` command line (also `python -m keras_longtail`).

`keras-longtail train` trains a model on a long-tailed data set with one of the
toolkit's methods and prints the Many / Medium / Few test-accuracy table; `--output`
also writes it as JSON (checked before training, replaced only with `--overwrite`,
written atomically). `run_training(...)` is the same job as a function, for
benchmarks and notebooks.

The arguments are parsed before Keras and TensorFlow are imported (this module
imports them inside its functions), so `--help`, `--version` and argument errors
answer at once; every numeric flag is range-checked there.
"""

import argparse
import json
import math
import os
import sys
import time

DATASETS = {
    # name: (loader, default imbalance factor, default model, default epochs, default batch size)
    "digits-lt": ("digits", 20, "mlp", 40, 32),
    "cifar10-lt": ("cifar10", 100, "resnet32", 200, 128),
    "cifar100-lt": ("cifar100", 100, "resnet32", 200, 128),
    "fashion-mnist-lt": ("fashion_mnist", 100, "resnet32", 200, 128),
}
METHODS = ("ce", "gala", "gradtail", "gbg", "async", "wb")
TASKS = ("classification", "depth")
DEPTH_DATASETS = ("waymo", "synthetic-depth")
DEPTH_METHODS = ("ce", "gradtail")
GBG_MODES = ("backbone", "exact", "representation")
GBG_SAMPLERS = ("group_aware_completion", "random")
GBG_NORMALIZATIONS = ("none", "l2", "loss", "loss+")
GALA_ACCUMULATIONS = ("paper", "official")
# Decoupled (Keras) weight decay of "CE + WD" on the CIFAR-style sets, everywhere (CLI, benchmarks, docs): the
# weight-balancing paper's tuned value (coupled 5e-3 at lr 0.01 with momentum 0.9, a 5e-4 shrink per step),
# converted to Keras' decoupled form at our lr 0.1. LDAM-DRW's plain CE uses 2e-3 (coupled 2e-4).
WEIGHT_DECAY = 5e-3
# The LDAM-DRW warm-up: 5 of 200 epochs.
WARMUP_FRACTION = 0.025
# `resnet32`'s batch-norm momentum (PyTorch's 0.1, the reference code's).
RESNET_BATCH_NORM_MOMENTUM = 0.9


def _number(kind, minimum=None, maximum=None, min_inclusive=True, name=None):
    """An argparse `type` that parses `kind` (int or float) and checks its range (finite floats only)."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"received {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, received {text!r}")
        if minimum is not None and (value < minimum if min_inclusive else value <= minimum):
            raise argparse.ArgumentTypeError(f"expected {'>=' if min_inclusive else '>'} {minimum:g}, "
                                             f"received {text!r}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected <= {maximum:g}, received {text!r}")
        return value

    parse.__name__ = name or kind.__name__  # argparse names the type in its messages
    return parse


_POSITIVE_INT = _number(int, minimum=1, name="integer >= 1")
_NON_NEGATIVE_INT = _number(int, minimum=0, name="integer >= 0")
_POSITIVE_FLOAT = _number(float, minimum=0, min_inclusive=False, name="number > 0")
_NON_NEGATIVE_FLOAT = _number(float, minimum=0, name="number >= 0")


class _DeprecatedAlias(argparse.Action):
    """Stores the value like the flag it is an alias of, and says on stderr that the alias is deprecated."""

    def __init__(self, option_strings, dest, replacement=None, **kwargs):
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"keras-longtail: warning: {option_string} is deprecated, use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _version():
    from keras_longtail import __version__

    return __version__


def build_parser():
    """The `keras-longtail` argument parser. Building and using it imports neither Keras nor TensorFlow."""
    parser = argparse.ArgumentParser(prog="keras-longtail", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train", help="train and print the Many/Medium/Few test accuracy",
        description="Train a model on a long-tailed data set with one of the toolkit's methods and print its "
                    "test accuracy on the Many / Medium / Few classes (or, with --task depth, the depth error "
                    "per distance bin).")
    general = train.add_argument_group("task and data")
    general.add_argument("--task", choices=TASKS, default="classification",
                         help="classification (long-tailed classes, Many/Medium/Few table) or depth (monocular "
                              "depth, MRE per distance bin) (default: classification)")
    general.add_argument("--dataset", choices=sorted(DATASETS) + list(DEPTH_DATASETS), default=None,
                         metavar="NAME",
                         help="long-tailed data set: " + ", ".join(sorted(DATASETS)) + " (default: digits-lt, "
                              "embedded, no download); with --task depth: waymo (Waymo Open Dataset v2 Parquet "
                              "in --data-dir, the default) or synthetic-depth (rendered road scenes with a rare "
                              "far range, no download)")
    general.add_argument("--data-dir", default=None, metavar="DIR",
                         help="directory holding the data set files: CIFAR in the python-pickle layout "
                              "(cifar-10-batches-py/, cifar-100-python/) or as image folders train/<class>/*.jpg "
                              "and test/<class>/*.jpg; Fashion-MNIST as its four IDX files (default: "
                              "$KERAS_LONGTAIL_DATA, else tensorflow-datasets, which needs internet)")
    general.add_argument("--imbalance-factor", type=_number(float, minimum=1, name="number >= 1"), default=None,
                         metavar="IF", help="n_max / n_min of the training split, >= 1 (default: 20 for "
                                            "digits-lt, else 100)")
    general.add_argument("--seed", type=_NON_NEGATIVE_INT, default=0, metavar="N", help="random seed (default: 0)")
    general.add_argument("--output", default=None, metavar="FILE",
                         help="write the results as JSON to this file (checked before training; an existing "
                              "file is kept unless --overwrite)")
    general.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    general.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2, metavar="{0,1,2}",
                         help="0 silent, 1 progress bars, 2 one line per epoch (Keras verbosity; phases are "
                              "announced unless 0) (default: 2)")

    optimization = train.add_argument_group("model and optimization")
    optimization.add_argument("--method", choices=METHODS, default="ce",
                              help="training method: ce (cross-entropy), gala (GALALoss), gradtail "
                                   "(GradTailModel), gbg (GBGModel), async (DualPhaseTraining), wb (weight "
                                   "balancing: CE + WD, then the classifier retrained with class-balanced loss + "
                                   "WD + MaxNorm) (default: ce)")
    optimization.add_argument("--model", choices=("auto", "resnet32", "mlp"), default="auto",
                              help="network (default: auto = mlp for digits-lt, resnet32 otherwise)")
    optimization.add_argument("--epochs", type=_POSITIVE_INT, default=None, metavar="N",
                              help="training epochs (default: 40 for digits-lt, 200 otherwise)")
    optimization.add_argument("--batch-size", type=_POSITIVE_INT, default=None, metavar="N",
                              help="default: 32 for digits-lt, 128 otherwise (10 with --task depth)")
    optimization.add_argument("--learning-rate", type=_POSITIVE_FLOAT, default=None, metavar="LR",
                              help="peak learning rate, > 0 (default: 0.05 with Adam for digits-lt, 0.1 with SGD "
                                   "otherwise)")
    optimization.add_argument("--weight-decay", type=_NON_NEGATIVE_FLOAT, default=None, metavar="WD",
                              help="decoupled (Keras) weight decay, >= 0 (default: 5e-3 with SGD, the "
                                   "weight-balancing paper's tuned value; 0 for digits-lt)")
    optimization.add_argument("--steps-per-epoch", type=_POSITIVE_INT, default=None, metavar="N",
                              help="cap the steps of each epoch (smoke runs); default: one pass over the data")

    gbg = train.add_argument_group("GBG (--method gbg)")
    gbg.add_argument("--gbg-num-groups", dest="num_groups", type=_number(int, minimum=1, name="integer >= 1"),
                     default=4, metavar="G", help="number of class groups, 1 .. number of classes (default: 4)")
    gbg.add_argument("--num-groups", dest="num_groups", type=_number(int, minimum=1, name="integer >= 1"),
                     action=_DeprecatedAlias, replacement="--gbg-num-groups", metavar="G",
                     help="deprecated alias of --gbg-num-groups")
    gbg.add_argument("--gbg-mode", choices=GBG_MODES, default="backbone",
                     help="gradients alpha is solved on: backbone (every weight but the classifier, what the GBG "
                          "code runs), exact (every weight, Algorithm 2 as printed), or representation "
                          "(classifier surrogate, ~1x step time; a heuristic that trains far worse) "
                          "(default: backbone)")
    gbg.add_argument("--gbg-normalization", choices=GBG_NORMALIZATIONS, default="loss+",
                     help="gradient normalizer before the min-norm solve: none (the paper's Eq. 11), l2, "
                          "loss, or loss+ (what the GBG code runs) (default: loss+)")
    gbg.add_argument("--gbg-solve-every", type=_POSITIVE_INT, default=1, metavar="K",
                     help="exact mode: re-solve the min-norm weights every K steps and reuse them between "
                          "(K = 4: ~1.3x step time instead of ~2.7x; an approximation) (default: 1, the paper)")

    dual = train.add_argument_group("dual-phase (--method async)")
    dual.add_argument("--async-threshold", type=_POSITIVE_INT, default=None, metavar="C",
                      help="number of phase-I (data-rich) classes (default: Many + Medium, or Many when that is "
                           "every class)")
    dual.add_argument("--phase-two-lr", dest="phase_two_learning_rate", type=_POSITIVE_FLOAT, default=None,
                      metavar="LR", help="peak learning rate of phase II, > 0 (default: --learning-rate, as in "
                                         "the paper's Algorithm 1)")

    gradtail = train.add_argument_group("GradTail (--method gradtail; --task depth too)")
    gradtail.add_argument("--gradtail-max-weight", type=_POSITIVE_FLOAT, default=None, metavar="W",
                          help="maximum example weight, > 0 (paper: 3 on ImageNet, 15 on the toy and on depth) "
                               "(default: 3; 15 with --task depth)")
    gradtail.add_argument("--gradtail-pivot", type=_number(float, name="number"), default=None, metavar="P",
                          help="pivot p (default: 0; -0.5 with --task depth, the paper's best in Table 2)")
    gradtail.add_argument("--gradtail-layers", choices=("classifier", "last-two"), default="classifier",
                          help="gradient layers: the classifier (analytic Dense path, ~1x step time) or the "
                               "paper's last two layers (on ResNet-32 the last conv + classifier, exact analytic "
                               "per-example gradients with the batch-norm coupling, ~1.04x) (default: classifier)")

    gala = train.add_argument_group("GALA (--method gala) and post-hoc re-balancing")
    gala.add_argument("--gala-accumulation", choices=GALA_ACCUMULATIONS, default="paper",
                      help="GALALoss statistics: paper (per-example sums) or official (the public code's "
                           "cumulative of the cumulative) (default: paper)")
    gala.add_argument("--rebalance-tau", type=_NON_NEGATIVE_FLOAT, default=None, metavar="TAU",
                      help="also report test accuracy after post-hoc prediction re-balancing (GALA's PN, "
                           "transductive over the test set) with this tau >= 0; the official CIFAR value is 1")

    wb = train.add_argument_group("weight balancing (--method wb)")
    wb.add_argument("--stage-one-model", default=None, metavar="FILE.keras",
                    help="a trained .keras model to use as stage 1 instead of training one")

    depth = train.add_argument_group("depth (--task depth; the method is ce = masked L1 or gradtail)")
    depth.add_argument("--image-size", type=_number(int, minimum=32, name="integer >= 32"), nargs=2, default=None,
                       metavar=("HEIGHT", "WIDTH"),
                       help="input and depth size, multiples of 32 (default: 192 480 for waymo, 128 320 for "
                            "synthetic-depth)")
    depth.add_argument("--width-multiplier", type=_POSITIVE_FLOAT, default=None, metavar="X",
                       help="depth_unet filter multiplier, > 0 (default: 1 for waymo, 0.5 for synthetic-depth)")
    depth.add_argument("--train-scenes", type=_POSITIVE_INT, default=600, metavar="N",
                       help="synthetic-depth training scenes (default: 600)")
    depth.add_argument("--test-scenes", type=_POSITIVE_INT, default=200, metavar="N",
                       help="synthetic-depth test scenes (default: 200)")
    return parser


def check_output(path, overwrite=False):
    """Checks, before any training, that the results can be written to `path`; returns its absolute path.

    Raises `FileExistsError` for an existing file without `overwrite`, `IsADirectoryError`
    for a directory, `FileNotFoundError` when the parent directory is missing and
    `PermissionError` when it (or the file) is not writable.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"--output names a directory; expected a file path. Received: output={path!r}")
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"--output's directory {parent!r} does not exist. Received: output={path!r}")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"--output {path!r} exists; pass --overwrite to replace it, or choose another "
                              f"path. Received: output={path!r}")
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise PermissionError(f"--output {path!r} is not writable. Received: output={path!r}")
    return path


def write_results(results, path):
    """Writes `results` as JSON to `path` atomically: a temporary file in the same directory, then a rename,
    so that an interrupted write never leaves a half-written or emptied file."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".keras-longtail-", suffix=".json.tmp", dir=directory)
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(results, file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _save_somewhere(results, wanted, error):
    """After training, `wanted` could not be written: keep the results in the temp directory instead."""
    import tempfile

    handle, fallback = tempfile.mkstemp(prefix="keras-longtail-results-", suffix=".json")
    with os.fdopen(handle, "w") as file:
        json.dump(results, file, indent=2)
    print(f"keras-longtail: error: could not write --output {wanted!r} ({error}); the results are in "
          f"{fallback}", file=sys.stderr)


def main(argv=None):
    """Entry point of `keras-longtail`; returns the process exit code.

    The arguments are parsed and `--output` is checked before Keras and TensorFlow are imported, so
    `--help`, `--version` and argument errors answer at once.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        output = None
        if args.output is not None:
            try:
                output = check_output(args.output, overwrite=args.overwrite)
            except OSError as error:
                parser.exit(2, f"keras-longtail: error: {error}\n")
        options = {k: v for k, v in vars(args).items() if k not in ("command", "output", "overwrite", "task")}
        try:
            if args.task == "depth":
                results = run_depth_training(**_depth_options(options))
            else:
                results = run_training(**_classification_options(options))
        except (ValueError, TypeError, FileNotFoundError, ImportError) as error:
            print(f"keras-longtail: error: {error}", file=sys.stderr)
            return 2
        print(format_depth_table(results) if args.task == "depth" else format_shot_table(results))
        if output:
            try:
                write_results(results, output)
            except OSError as error:
                _save_somewhere(results, output, error)
                return 1
            print(f"results written to {output}")
    return 0


def run_training(dataset="digits-lt", imbalance_factor=None, method="ce", model="auto", epochs=None,
                 batch_size=None, learning_rate=None, weight_decay=None, steps_per_epoch=None,
                 data_dir=None, seed=0, verbose=2, save_model=None, gala_accumulation="paper",
                 rebalance_tau=None, gradtail_max_weight=3.0, gradtail_layers="classifier", num_groups=4,
                 gbg_mode="backbone", async_threshold=None, stage_one_model=None, async_options=None,
                 gbg_options=None, batch_norm_momentum=None, phase_two_learning_rate=None, state_dir=None):
    """Trains one model as `keras-longtail train` does and returns the results dict.

    `save_model` names a `.keras` path where the trained model is saved. With
    `method="gala"` the loss is `GALALoss(accumulation=gala_accumulation)` with the
    `GALAAccumulator` callback. With `rebalance_tau`, the test logits are also
    re-balanced by `PredictionRebalancing(rebalance_tau)` over the whole test set.
    With `method="gradtail"` the network is wrapped in `GradTailModel` (pivot 0, decay
    0.99, `GradTailSigmoid(gradtail_max_weight)`) on the classifier or, with
    `gradtail_layers="last-two"`, on the paper's last two layers. With `method="gbg"`
    the classes are grouped once on the initialized network (`group_classes` with its
    defaults, the GBG code's: backbone gradients, batch norm in inference mode, the
    un-augmented training set) and the network is wrapped in
    `GBGModel(mode=gbg_mode, **gbg_options)` (default mode `"backbone"` and normalizer
    `"loss+"`, the GBG code's); `gbg_options` holds further `GBGModel` keyword arguments
    (e.g. `normalization`) and two of the pipeline: `"group_classes"`, a dict of
    `group_classes` keyword arguments (e.g. `{"gradients": "classifier"}`), and
    `"sampler"`: `"group_aware_completion"` (default; the paper's GAC sampler, which the
    GBG code does not have: a batch missing a group gets ceil(0.1 B) class-balanced
    examples of it) or `"random"` (the shuffled batches of the other methods).
    `batch_norm_momentum` is passed to `resnet32` (default: its 0.9). With
    `method="async"`, `DualPhaseTraining` runs phase I on the head classes and phase II
    on the tail plus the exemplar memory, splitting the CE baseline's steps per epoch
    between them (phase II at most half); `async_options` are further
    `DualPhaseTraining` keyword arguments (e.g. `retentive_temperature`), and
    `phase_two_learning_rate` the peak learning rate of phase II (default: the
    phase-I one, as in the paper's Algorithm 1). With `method="wb"`, stage 1 is the CE run
    (or the saved model `stage_one_model`, which then replaces training) and stage 2
    `retrain_classifier` (class-balanced loss β = 0.9999, decoupled WD 0.01, MaxNorm
    at thresh 0.1 projected per epoch, 10 epochs on features computed once); the
    results also hold `stage_one_accuracy`.

    Unless `verbose` is 0, each phase is announced on stdout before it starts (loading,
    GBG's class grouping and the test evaluation with a `keras.utils.Progbar`, the
    dual-phase split of the steps per epoch, the weight-balancing stages).

    With `state_dir`, every `fit` checkpoints at each epoch end into that folder
    (`keras_longtail.callbacks.BackupAndRestore`: weights, optimizer, loss state)
    together with `progress.json` (epochs done, wall and CPU seconds so far), and a
    call with the same arguments and `state_dir` after an interruption resumes at
    the last finished epoch; `train_seconds` and `train_cpu_seconds` then add up the
    interrupted parts. The folder must belong to this run only.

    Returns:
        A JSON-serializable dict: the configuration, `class_counts`, `accuracy`
        (`overall`, and `many`/`medium`/`few` for the splits that have classes, in %),
        `per_class_accuracy` (%), `shot_classes` and `train_seconds`; with
        `rebalance_tau`, also `rebalanced_accuracy` and `rebalanced_per_class_accuracy`.

    Example:

    ```python
    results = run_training("digits-lt", epochs=5, verbose=0)
    results["accuracy"]["overall"]
    ```
    """
    import keras

    import keras_longtail
    from keras_longtail._internal import validation as _validation
    from keras_longtail import data as lt_data
    from keras_longtail import metrics as lt_metrics
    from keras_longtail import models as lt_models

    keras_longtail._import_namespaces()  # every registered object, before any `.keras` file is loaded
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
    _validation.check_float("imbalance_factor", imbalance_factor, minimum=1.0)
    _validation.check_int("seed", seed, minimum=0)
    if learning_rate is not None:
        _validation.check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    if weight_decay is not None:
        _validation.check_float("weight_decay", weight_decay, minimum=0.0)
    if method == "gbg":
        _validation.check_int("num_groups", num_groups, minimum=1)
    if method == "gradtail":
        _validation.check_float("gradtail_max_weight", gradtail_max_weight, minimum=0.0, min_inclusive=False)
    if method == "async" and async_threshold is not None:
        _validation.check_int("async_threshold", async_threshold, minimum=1)
    if method == "gala" and gala_accumulation not in GALA_ACCUMULATIONS:
        raise ValueError(f"Expected `gala_accumulation` in {list(GALA_ACCUMULATIONS)}. "
                         f"Received: gala_accumulation={gala_accumulation!r}")
    if method == "gradtail" and gradtail_layers not in ("classifier", "last-two"):
        raise ValueError("Expected `gradtail_layers` in ['classifier', 'last-two']. "
                         f"Received: gradtail_layers={gradtail_layers!r}")
    if method == "gbg" and gbg_mode not in GBG_MODES:
        raise ValueError(f"Expected `gbg_mode` in {list(GBG_MODES)}. Received: gbg_mode={gbg_mode!r}")
    if rebalance_tau is not None and not rebalance_tau >= 0:
        raise ValueError(f"Expected `rebalance_tau` >= 0. Received: rebalance_tau={rebalance_tau}")
    if phase_two_learning_rate is not None and method != "async":
        raise ValueError(f"`phase_two_learning_rate` is for method='async'. Received: method={method!r}")
    if phase_two_learning_rate is not None and not phase_two_learning_rate > 0:
        raise ValueError(f"Expected `phase_two_learning_rate` > 0. Received: "
                         f"phase_two_learning_rate={phase_two_learning_rate}")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError(f"Expected `steps_per_epoch` >= 1. Received: steps_per_epoch={steps_per_epoch}")
    keras.utils.set_random_seed(seed)

    _announce(verbose, f"loading {dataset} (imbalance factor {imbalance_factor:g})")
    if loader == "digits":
        loaded = lt_data.load_digits_lt(imbalance_factor)
    elif loader == "fashion_mnist":
        loaded = lt_data.load_fashion_mnist_lt(imbalance_factor, data_dir=data_dir)
    else:
        loaded = lt_data.load_cifar_lt(loader, imbalance_factor, data_dir=data_dir)
    num_classes = loaded.num_classes
    image_shape = tuple(loaded.train.element_spec[0].shape)
    shots = lt_data.shot_splits(loaded.class_counts)
    _announce(verbose, f"{loaded.num_train} training images in {num_classes} classes ({len(shots.many)} Many, "
                       f"{len(shots.medium)} Medium, {len(shots.few)} Few), {_test_size(loaded) or 'the'} test images")

    if model_name == "mlp" and batch_norm_momentum is not None:
        raise ValueError("`batch_norm_momentum` is for the resnet32 model (the MLP has no batch norm). "
                         f"Received: batch_norm_momentum={batch_norm_momentum} with model='mlp'")
    if model_name == "mlp":
        network = lt_models.mlp(num_classes, image_shape, hidden_units=(64,))
    else:
        batch_norm_momentum = RESNET_BATCH_NORM_MOMENTUM if batch_norm_momentum is None else batch_norm_momentum
        network = lt_models.resnet32(num_classes, input_shape=image_shape, batch_norm_momentum=batch_norm_momentum)

    steps = math.ceil(loaded.num_train / batch_size)
    if steps_per_epoch is not None:
        steps = min(steps, steps_per_epoch)
    if loader == "digits":
        learning_rate = 0.05 if learning_rate is None else learning_rate
        weight_decay = 0.0 if weight_decay is None else weight_decay
        augment = False
    else:
        learning_rate = 0.1 if learning_rate is None else learning_rate
        weight_decay = WEIGHT_DECAY if weight_decay is None else weight_decay
        augment = True

    def make_optimizer(steps_per_epoch, peak=None):
        peak = learning_rate if peak is None else peak
        if loader == "digits":
            schedule = keras.optimizers.schedules.CosineDecay(peak, epochs * steps_per_epoch)
            return keras.optimizers.Adam(schedule, weight_decay=weight_decay or None)
        return keras.optimizers.SGD(_ldam_schedule(peak, epochs, steps_per_epoch), momentum=0.9,
                                    weight_decay=weight_decay or None)

    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    shot_metric = lt_metrics.ShotAccuracy(loaded.class_counts)
    extra = {}
    progress = _Progress(state_dir)  # also the clock of train_seconds and train_cpu_seconds
    if stage_one_model is not None:
        if method != "wb":
            raise ValueError(f"`stage_one_model` is for method='wb'. Received: method={method!r}")
        _announce(verbose, f"weight balancing stage 1: the trained model {stage_one_model}")
        network = keras.saving.load_model(stage_one_model, compile=False)
        extra["stage_one_model"] = str(stage_one_model)
    elif method == "async":
        from keras_longtail import training as lt_training

        # Phase II runs `epochs` epochs over D = X2 ∪ memory (at most half the budget); phase I gets the rest of
        # the CE baseline's `epochs * steps` steps.
        dual = lt_training.DualPhaseTraining(network, loaded.class_counts, threshold=async_threshold,
                                             **(async_options or {}))
        if async_options:
            extra["async_options"] = dict(async_options)
        phase_two_steps = min(math.ceil(dual.phase_two_size() / batch_size), max(1, steps // 2))
        phase_one_steps = max(1, steps - phase_two_steps)
        _announce(verbose, f"dual-phase: the {steps} steps per epoch are split into phase I {phase_one_steps} "
                           f"(classes {[int(c) for c in dual.split.phase_one]}, "
                           f"{sum(dual.phase_one_class_counts)} images) and phase II {phase_two_steps} (the other "
                           f"classes + the exemplar memory, {dual.phase_two_size()} images), {epochs} epochs each")
        _announce(verbose, f"dual-phase phase I: {epochs} epochs x {phase_one_steps} steps")
        dual.phase_one_model.compile(optimizer=make_optimizer(phase_one_steps), loss=ce)
        phase_one = dual.phase_one_data(loaded.train)
        dual.phase_one_model.fit(
            _training_pipeline(phase_one, sum(dual.phase_one_class_counts), batch_size, augment, seed),
            epochs=epochs, steps_per_epoch=phase_one_steps, shuffle=False, verbose=verbose,
            callbacks=progress.callbacks("phase_one", epochs))
        _announce(verbose, f"dual-phase: exemplar memory from the phase-I features of {loaded.num_train} "
                           "training images")
        dual.build_memory_bank(loaded.train)
        phase_two_model = dual.build_phase_two_model()
        _announce(verbose, f"dual-phase phase II: {epochs} epochs x {phase_two_steps} steps")
        phase_two_model.compile(optimizer=make_optimizer(phase_two_steps, phase_two_learning_rate), loss=ce,
                                metrics=[shot_metric])
        phase_two_model.fit(
            _training_pipeline(dual.phase_two_data(loaded.train), dual.phase_two_size(), batch_size, augment, seed),
            epochs=epochs, steps_per_epoch=phase_two_steps, shuffle=False, verbose=verbose,
            callbacks=progress.callbacks("phase_two", epochs))
        network = dual.model
        extra.update(phase_two_learning_rate=learning_rate if phase_two_learning_rate is None
                     else phase_two_learning_rate)
        extra.update(async_phase_one_classes=[int(c) for c in dual.split.phase_one],
                     async_steps_per_epoch=[phase_one_steps, phase_two_steps])
    else:
        callbacks = []
        loss = ce
        train = None
        if method == "gala":
            from keras_longtail import callbacks as lt_callbacks
            from keras_longtail import losses as lt_losses

            loss = lt_losses.GALALoss(num_classes, accumulation=gala_accumulation)
            callbacks.append(lt_callbacks.GALAAccumulator())
        elif method == "gradtail":
            from keras_longtail import training as lt_training

            network = lt_training.GradTailModel.from_model(
                network, gradient_layers=["classifier"] if gradtail_layers == "classifier" else None,
                activation=lt_training.GradTailSigmoid(max_weight=gradtail_max_weight))
        elif method == "gbg":
            from keras_longtail import gbg as lt_gbg
            from keras_longtail import training as lt_training

            model_options = dict(gbg_options or {})
            sampler = model_options.pop("sampler", "group_aware_completion")
            grouping_options = {"projection_dim": None if num_classes <= 1000 else 1024,
                                **model_options.pop("group_classes", {})}
            if sampler not in GBG_SAMPLERS:
                raise ValueError(f"Expected gbg_options['sampler'] in {list(GBG_SAMPLERS)}. "
                                 f"Received: sampler={sampler!r}")
            # GBG Algorithm 1, once, on the initialized model: one pass over the un-augmented training set.
            _announce(verbose, f"GBG: grouping {num_classes} classes into {num_groups} groups from their "
                               f"{grouping_options.get('gradients', 'backbone')} gradients (Algorithm 1, one pass over "
                               f"{loaded.num_train} training images)")
            batches = _with_progress(loaded.train.batch(256), math.ceil(loaded.num_train / 256), verbose)
            grouping = lt_gbg.group_classes(network, batches, num_groups=num_groups, seed=seed,
                                            **grouping_options)
            network = lt_training.GBGModel.from_model(network, grouping, mode=gbg_mode, **model_options)
            if sampler == "group_aware_completion":
                import tensorflow as tf

                train = lt_data.group_aware_completion(
                    loaded.train, grouping, loaded.class_counts, batch_size, seed=seed,
                    shuffle_buffer=loaded.num_train, augment=_crop_and_flip if augment else None,
                ).prefetch(tf.data.AUTOTUNE)
            extra.update(num_groups=num_groups, gbg_mode=gbg_mode, groups=[int(g) for g in grouping.groups],
                         gbg_normalization=network.gbg_settings()["normalization"], gbg_sampler=sampler)
            if gbg_options:
                extra["gbg_options"] = dict(gbg_options)
        network.compile(optimizer=make_optimizer(steps), loss=loss, metrics=[shot_metric])
        if train is None:
            train = _training_pipeline(loaded.train, loaded.num_train, batch_size, augment, seed)
        _announce(verbose, f"training ({'weight balancing stage 1: CE + WD' if method == 'wb' else method}): "
                           f"{epochs} epochs x {steps} steps")
        network.fit(train, epochs=epochs, steps_per_epoch=steps, shuffle=False, verbose=verbose,
                    callbacks=callbacks + progress.callbacks("fit", epochs))
    if method == "wb":
        from keras_longtail import training as lt_training

        _announce(verbose, "weight balancing: stage-1 test accuracy")
        extra["stage_one_accuracy"] = _evaluate(network, loaded, verbose)[0][0]
        _announce(verbose, f"weight balancing stage 2: features of the {loaded.num_train} training images "
                           "(one forward pass), then the classifier retrained for 10 epochs (class-balanced "
                           "loss + WD + MaxNorm)")
        history = lt_training.retrain_classifier(network, loaded.train, class_counts=loaded.class_counts,
                                                 verbose=verbose)
        extra["stage_two_max_norm"] = round(float(history.history["max_norm"][-1]), 5)
    if state_dir is not None:
        extra.update(resumed_from=progress.resumed_from)
    train_seconds, train_cpu_seconds = progress.totals()
    if save_model:
        network.save(save_model)

    _announce(verbose, f"test accuracy on {_test_size(loaded) or 'the'} test images")
    (accuracy, per_class), labels, logits = _evaluate(network, loaded, verbose)
    if rebalance_tau is not None:
        from keras_longtail import layers as lt_layers

        rebalanced = lt_layers.PredictionRebalancing(tau=rebalance_tau, from_logits=True)(logits)
        extra["rebalance_tau"] = rebalance_tau
        extra["rebalanced_accuracy"], extra["rebalanced_per_class_accuracy"] = _shot_accuracy(
            loaded.class_counts, labels, rebalanced)
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
        "per_class_accuracy": per_class,
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        **({"gala_accumulation": gala_accumulation} if method == "gala" else {}),
        **({"gradtail_max_weight": gradtail_max_weight, "gradtail_layers": gradtail_layers}
           if method == "gradtail" else {}),
        **({} if model_name == "mlp" else {"batch_norm_momentum": batch_norm_momentum,
                                           "shortcut": "zero_pad"}),
        **extra,
    }


_DEPTH_ONLY = {"image_size": None, "width_multiplier": None, "train_scenes": 600, "test_scenes": 200,
               "gradtail_pivot": None}


def _classification_options(options):
    """`keras-longtail train` options for `run_training` (rejects the depth-only ones)."""
    options = dict(options)
    if options["dataset"] in DEPTH_DATASETS:
        raise ValueError(f"--dataset {options['dataset']} is a depth data set: add --task depth. "
                         f"Received: dataset={options['dataset']!r} with task='classification'")
    for name, default in _DEPTH_ONLY.items():
        if options.pop(name) != default:
            raise ValueError(f"--{name.replace('_', '-')} is a --task depth option. Received: {name} with "
                             "task='classification'")
    options["dataset"] = options["dataset"] or "digits-lt"
    gbg_options = {}
    normalization = options.pop("gbg_normalization")
    if normalization is not None:  # passed even when "none": GBGModel's own default is the GBG code's "loss+"
        gbg_options["normalization"] = normalization
    solve_every = options.pop("gbg_solve_every")
    if solve_every != 1:
        gbg_options["solve_every"] = solve_every
    if gbg_options:
        options["gbg_options"] = gbg_options
    options["gradtail_max_weight"] = 3.0 if options["gradtail_max_weight"] is None else options["gradtail_max_weight"]
    return options


def _depth_options(options):
    """`keras-longtail train --task depth` options for `run_depth_training` (classification-only ones dropped)."""
    keep = ("dataset", "method", "epochs", "batch_size", "learning_rate", "steps_per_epoch", "data_dir", "seed",
            "verbose", "gradtail_max_weight", "gradtail_pivot", *_DEPTH_ONLY)
    options = {k: v for k, v in options.items() if k in keep}
    options["dataset"] = options["dataset"] or "waymo"
    if options["dataset"] not in DEPTH_DATASETS:
        raise ValueError(f"Expected --dataset in {list(DEPTH_DATASETS)} with --task depth. "
                         f"Received: dataset={options['dataset']!r}")
    if options["method"] not in DEPTH_METHODS:
        raise ValueError(f"Expected --method in {list(DEPTH_METHODS)} with --task depth (ce = masked L1). "
                         f"Received: method={options['method']!r}")
    return {k: v for k, v in options.items() if v is not None}


def run_depth_training(dataset="synthetic-depth", method="ce", data_dir=None, epochs=None, batch_size=10,
                       learning_rate=None, steps_per_epoch=None, image_size=None, width_multiplier=None,
                       train_scenes=600, test_scenes=200, far_probability=0.15, gradtail_pivot=-0.5,
                       gradtail_max_weight=15.0, seed=0, verbose=2, save_model=None):
    """Trains `depth_unet` on monocular depth as `keras-longtail train --task depth` does; returns the results.

    `dataset="waymo"` reads the Waymo Open Dataset v2 Parquet components of
    `data_dir` (`training/` to train, `validation/` to test) through
    `load_waymo_depth` at 192×480 with the full-width network (the paper's
    setting: batch 10, Adam at a constant 2e-4); `"synthetic-depth"` renders
    `synthetic_depth_scenes` (a rare far range) at 128×320 with a half-width
    network and lr 1e-3, so that a CPU reaches a meaningful error in minutes.
    `method="ce"` is the baseline, `MaskedL1` (ℓ1 on the pixels with ground
    truth); `method="gradtail"` is the paper's configuration, `gradtail_depth`
    (biases of `decoder_up_1` and `decoder_up_2`, the 6 + 1 random patches,
    max weight `gradtail_max_weight`, pivot `gradtail_pivot`) trained on the
    per-pixel ℓ1 with the ground-truth mask as `sample_weight`.

    Returns:
        A JSON-serializable dict: the configuration, `mre` (mean relative error
        in % per ground-truth distance bin < 20, 20-40, 40-60, > 60 m and total,
        `BinnedMeanRelativeError`), `test_masked_l1` (metres, the mean over test
        images of `MaskedL1`), `test_pixel_share_percent` (test pixels with
        ground truth per bin), `train_loss` per epoch and `train_seconds`.

    Example:

    ```python
    results = run_depth_training("synthetic-depth", method="gradtail", epochs=12)
    results["mre"]["mre_gt_60"]
    ```
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_longtail
    from keras_longtail._internal import validation as _validation
    from keras_longtail import data as lt_data
    from keras_longtail import losses as lt_losses
    from keras_longtail import metrics as lt_metrics
    from keras_longtail import models as lt_models
    from keras_longtail import training as lt_training

    if dataset not in DEPTH_DATASETS:
        raise ValueError(f"Expected `dataset` in {list(DEPTH_DATASETS)}. Received: dataset={dataset!r}")
    if method not in DEPTH_METHODS:
        raise ValueError(f"Expected `method` in {list(DEPTH_METHODS)} (ce = masked L1). Received: method={method!r}")
    synthetic = dataset == "synthetic-depth"
    epochs = (12 if synthetic else 10) if epochs is None else epochs
    learning_rate = (1e-3 if synthetic else 2e-4) if learning_rate is None else learning_rate
    image_size = tuple((128, 320) if synthetic else (192, 480)) if image_size is None else tuple(image_size)
    width_multiplier = (0.5 if synthetic else 1.0) if width_multiplier is None else width_multiplier
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("train_scenes", train_scenes),
                        ("test_scenes", test_scenes)):
        if value < 1:
            raise ValueError(f"Expected `{name}` >= 1. Received: {name}={value}")
    keras_longtail._import_namespaces()
    _validation.check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    _validation.check_float("width_multiplier", width_multiplier, minimum=0.0, min_inclusive=False)
    _validation.check_float("gradtail_max_weight", gradtail_max_weight, minimum=0.0, min_inclusive=False)
    _validation.check_float("far_probability", far_probability, minimum=0.0, maximum=1.0)
    _validation.check_int("seed", seed, minimum=0)
    if len(image_size) != 2 or any(not isinstance(v, int) or v < 32 or v % 32 for v in image_size):
        raise ValueError(f"Expected `image_size` to be two positive multiples of 32. Received: "
                         f"image_size={image_size}")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError(f"Expected `steps_per_epoch` >= 1. Received: steps_per_epoch={steps_per_epoch}")
    keras.utils.set_random_seed(seed)

    if synthetic:
        train = lt_data.synthetic_depth_scenes(train_scenes, image_size, far_probability=far_probability, seed=seed)
        test = lt_data.synthetic_depth_scenes(test_scenes, image_size, far_probability=far_probability,
                                              seed=seed + 10_000)
        train = train.cache().shuffle(train_scenes, seed=seed)
    else:
        if data_dir is None:
            raise ValueError("--dataset waymo needs --data-dir: the folder holding the Waymo Open Dataset v2 "
                             "Parquet splits training/ and validation/ (camera_image, camera_calibration, lidar, "
                             "lidar_calibration, lidar_camera_projection), read with pyarrow "
                             '(pip install "keras-longtail[waymo]"); or use --dataset synthetic-depth. '
                             "Received: data_dir=None")
        train = lt_data.load_waymo_depth(data_dir, "training", image_size=image_size)
        test = lt_data.load_waymo_depth(data_dir, "validation", image_size=image_size)
        train = train.shuffle(512, seed=seed)
    if steps_per_epoch is not None:
        train = train.repeat()
    train = train.batch(batch_size, drop_remainder=True)

    network = lt_models.depth_unet(image_size + (3,), width_multiplier=width_multiplier)
    if method == "gradtail":
        network = lt_training.gradtail_depth(network, pivot=gradtail_pivot, max_weight=gradtail_max_weight,
                                             seed=seed)
        loss = keras.losses.MeanAbsoluteError(reduction="mean_with_sample_weight")
        train = lt_data.with_ground_truth_mask(train)
    else:
        loss = lt_losses.MaskedL1()
    network.compile(keras.optimizers.Adam(learning_rate), loss=loss)
    start = time.perf_counter()
    history = network.fit(train.prefetch(tf.data.AUTOTUNE), epochs=epochs, steps_per_epoch=steps_per_epoch,
                          shuffle=False, verbose=verbose)
    train_seconds = time.perf_counter() - start
    if save_model:
        network.save(save_model)

    mre = lt_metrics.BinnedMeanRelativeError()
    masked_l1 = lt_losses.MaskedL1(reduction=None)
    per_image, counts = [], np.zeros(len(mre.bins) + 1)
    for images, depths in test.batch(batch_size):
        predictions = network(images, training=False)
        mre.update_state(depths, predictions)
        per_image.append(np.asarray(masked_l1(depths, predictions)))
        valid = depths.numpy()[depths.numpy() > 0]
        counts += np.histogram(valid, bins=[0.0, *mre.bins, np.inf])[0]
    result = {
        "task": "depth",
        "dataset": dataset,
        "method": method,
        "model": "depth_unet",
        "width_multiplier": width_multiplier,
        "image_size": list(image_size),
        "epochs": epochs,
        "batch_size": batch_size,
        "steps_per_epoch": steps_per_epoch,
        "learning_rate": learning_rate,
        "optimizer": "Adam, constant learning rate",
        "seed": seed,
        "loss": "MaskedL1" if method == "ce" else "per-pixel L1, ground-truth mask as sample_weight",
        "mre": {k: round(float(v), 3) for k, v in mre.result().items()},
        "test_masked_l1": round(float(np.concatenate(per_image).mean()), 4),
        "test_pixel_share_percent": {name: round(float(100 * c / max(counts.sum(), 1)), 2)
                                     for name, c in zip(mre.bin_names(), counts)},
        "train_loss": [round(float(v), 4) for v in history.history["loss"]],
        "train_seconds": round(train_seconds, 1),
    }
    if synthetic:
        result.update(train_scenes=train_scenes, test_scenes=test_scenes, far_probability=far_probability)
    else:
        result["data_dir"] = str(data_dir)
    if method == "gradtail":
        result.update(gradtail_pivot=gradtail_pivot, gradtail_max_weight=gradtail_max_weight,
                      gradtail_variables=[v.path for v in network.gradtail_variables],
                      gradtail_patches=keras.saving.serialize_keras_object(network.patches)["config"],
                      gradtail_path=network.gradtail_resolved_path,
                      gradtail_mean_weight=[round(float(v), 4) for v in history.history["gradtail_mean_weight"]])
    return result


def format_depth_table(results):
    """The per-distance-bin MRE table printed by `keras-longtail train --task depth` (GradTail Table 2 columns)."""
    title = (f"{results['dataset']} depth, method {results['method']}, depth_unet x{results['width_multiplier']:g} "
             f"{results['image_size'][0]}x{results['image_size'][1]}, {results['epochs']} epochs, "
             f"{results['train_seconds']} s")
    names = {"mre_lt_20": "<20 m", "mre_20_40": "20-40 m", "mre_40_60": "40-60 m", "mre_gt_60": ">60 m",
             "mre_total": "total"}
    rows = [f"{'MRE %':<8}" + "".join(f"{names.get(k, k):>10}" for k in results["mre"])]
    rows.append(f"{results['method']:<8}" + "".join(f"{v:10.2f}" for v in results["mre"].values()))
    return "\n".join([title, "-" * len(rows[0])] + rows)


def _announce(verbose, message):
    """Prints the start of a phase of `run_training` (unless `verbose` is 0)."""
    if verbose:
        print(f"keras-longtail: {message}", flush=True)


def _test_size(loaded):
    """The number of test examples, or `None` when tf.data does not know it."""
    size = int(loaded.test.cardinality())
    return size if size >= 0 else None


def _with_progress(batches, num_batches, verbose):
    """`batches` as an iterable that advances a Keras progress bar (verbose 1: live; 2: one line at the end)."""
    if not verbose:
        return batches
    import keras

    class _Batches:
        def __iter__(self):
            bar = keras.utils.Progbar(num_batches, verbose=verbose, unit_name="batch")
            for done, batch in enumerate(batches, 1):
                yield batch
                bar.update(done)

    return _Batches()


def _evaluate(network, loaded, verbose=0):
    """((accuracy dict, per-class list), labels, logits) of `network` on the test split."""
    import keras

    labels, logits = [], []
    size = _test_size(loaded)
    for images, batch_labels in _with_progress(loaded.test.batch(512), size and math.ceil(size / 512), verbose):
        labels.append(batch_labels)
        logits.append(network(images, training=False))
    labels, logits = keras.ops.concatenate(labels, axis=0), keras.ops.concatenate(logits, axis=0)
    return _shot_accuracy(loaded.class_counts, labels, logits), labels, logits


def _shot_accuracy(class_counts, labels, scores):
    """(accuracy dict in % keyed overall/many/medium/few, per-class accuracy list in %)."""
    from keras_longtail import metrics as lt_metrics

    shot = lt_metrics.ShotAccuracy(class_counts)
    shot.update_state(labels, scores)
    accuracy = {key.split("_", 1)[1]: round(100 * float(value), 2) for key, value in shot.result().items()}
    return accuracy, [round(100 * float(a), 2) for a in shot.per_class()]


def format_shot_table(results):
    """The Many / Medium / Few table printed by `keras-longtail train`."""
    title = (f"{results['dataset']} (imbalance factor {results['imbalance_factor']:g}), "
             f"method {results['method']}, {results['model']}, {results['epochs']} epochs, "
             f"trained in {results['train_seconds']} s; accuracy on the balanced test split")
    rows = [f"{'split':<8} {'classes':>7} {'test accuracy %':>15}"]
    if "rebalanced_accuracy" in results:
        rows[0] += f" {'PN tau=' + format(results['rebalance_tau'], 'g') + ' %':>14}"
    classes = dict(results["shot_classes"], overall=len(results["class_counts"]))
    for split in ("overall", "many", "medium", "few"):
        value = results["accuracy"].get(split)
        shown = f"{value:15.2f}" if value is not None else f"{'absent':>15}"
        if "rebalanced_accuracy" in results:
            value = results["rebalanced_accuracy"].get(split)
            shown += f"{value:15.2f}" if value is not None else f"{'absent':>15}"
        rows.append(f"{split:<8} {classes[split]:>7} {shown}")
    return "\n".join([title, "-" * len(rows[0])] + rows)


def _ldam_schedule(learning_rate, epochs, steps_per_epoch):
    """The LDAM-DRW CIFAR recipe scaled to `epochs`: linear warm-up over the first 2.5 % of
    the steps (5 of 200 epochs; at least one step, so it is never silently dropped), then
    x0.01 after 80 % of the steps (160 of 200 epochs) and x0.0001 after 90 %."""
    import keras

    from keras_longtail import optimizers as lt_optimizers

    total = epochs * steps_per_epoch
    warmup = max(1, int(round(WARMUP_FRACTION * total)))
    boundaries = [int(0.8 * total), int(0.9 * total)]
    decay = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [learning_rate, learning_rate * 0.01, learning_rate * 0.0001])
    return lt_optimizers.LinearWarmup(decay, warmup, learning_rate)


class _Progress:
    """Per-epoch checkpoints and time accounting of one `run_training` call in `state_dir` (or none).

    Each `fit` of the run (a phase) gets its own `BackupAndRestore` sub-folder, kept after
    the phase ends so that a later interruption can still resume the run from there, and
    `progress.json` records the epochs done per phase and the wall and CPU seconds of the
    finished epochs. The run's totals are the earlier calls' recorded seconds plus this
    call's own clock.
    """

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.state = {"phases": {}, "wall_seconds": 0.0, "cpu_seconds": 0.0}
        if state_dir is not None:
            from keras_longtail._internal import files as _files

            _files.makedirs(state_dir)
            if _files.exists(self.path):
                self.state = json.loads(_files.read_bytes(self.path))
        self.resumed_from = dict(self.state["phases"])
        self.earlier_wall, self.earlier_cpu = self.state["wall_seconds"], self.state["cpu_seconds"]
        self.wall_start, self.cpu_start = time.perf_counter(), time.process_time()

    @property
    def path(self):
        return os.path.join(self.state_dir, "progress.json")

    def totals(self):
        """(wall, CPU) seconds of the run so far, interrupted calls included."""
        return (self.earlier_wall + time.perf_counter() - self.wall_start,
                self.earlier_cpu + time.process_time() - self.cpu_start)

    def callbacks(self, phase, epochs):
        if self.state_dir is None:
            return []
        import keras

        from keras_longtail import callbacks as lt_callbacks

        progress = self

        class _Record(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                progress.record(phase, epoch + 1, epochs)

        backup = lt_callbacks.BackupAndRestore(os.path.join(self.state_dir, phase), delete_checkpoint=False)
        return [backup, _Record()]

    def record(self, phase, epoch, epochs):
        from keras_longtail._internal import files as _files

        wall, cpu = self.totals()
        self.state["phases"][phase] = {"epoch": epoch, "epochs": epochs}
        self.state["wall_seconds"], self.state["cpu_seconds"] = round(wall, 2), round(cpu, 2)
        _files.write_bytes(self.path, json.dumps(self.state, indent=1).encode())  # never half a file


def _training_pipeline(dataset, num_examples, batch_size, augment, seed):
    import tensorflow as tf

    dataset = dataset.shuffle(num_examples, seed=seed, reshuffle_each_iteration=True).repeat()
    if augment:
        dataset = dataset.map(_crop_and_flip, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _crop_and_flip(image, label):
    """Random crop after 4-pixel zero padding, and random horizontal flip (the CIFAR recipe)."""
    import tensorflow as tf

    height, width = image.shape[0], image.shape[1]
    padded = tf.image.resize_with_crop_or_pad(image, height + 8, width + 8)
    image = tf.image.random_crop(padded, tf.shape(image))
    return tf.image.random_flip_left_right(image), label


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
