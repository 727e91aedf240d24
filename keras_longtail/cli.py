"""The `keras-longtail` command line (also `python -m keras_longtail`).

`keras-longtail train` trains a model on a long-tailed data set with one of the
toolkit's methods and prints the Many / Medium / Few test-accuracy table; `--output`
also writes it as JSON (checked before training, replaced only with `--overwrite`,
written atomically). This module is a thin argparse shell: the jobs, their methods
and every default live in `keras_longtail.recipes` (`run_training(...)` is the same
job as a function, for benchmarks and notebooks; it stays importable from here).

The arguments are parsed before Keras and TensorFlow are imported (this module
imports them inside its functions), so `--help`, `--version` and argument errors
answer at once; every numeric flag is range-checked there.
"""

import argparse
import json
import math
import os
import sys

from keras_longtail._internal.defaults import GRADTAIL_DEPTH_PIVOT
from keras_longtail._internal.defaults import GRADTAIL_MAX_WEIGHT
from keras_longtail import recipes
# Re-exported: the jobs and the names the benchmarks, tests and notebooks have used from here.
from keras_longtail.recipes import DATASETS
from keras_longtail.recipes import DEPTH_DATASETS
from keras_longtail.recipes import DEPTH_METHODS
from keras_longtail.recipes import GALA_ACCUMULATIONS
from keras_longtail.recipes import GBG_GROUP_LOSSES
from keras_longtail.recipes import GBG_MODES
from keras_longtail.recipes import GBG_NORMALIZATIONS
from keras_longtail.recipes import GBG_SAMPLERS
from keras_longtail.recipes import GBG_WEIGHTINGS
from keras_longtail.recipes import RESNET_BATCH_NORM_MOMENTUM
from keras_longtail.recipes import TASKS
from keras_longtail.recipes import WARMUP_FRACTION
from keras_longtail.recipes import WEIGHT_DECAY
from keras_longtail.recipes import format_depth_table
from keras_longtail.recipes import format_shot_table
from keras_longtail.recipes import run_depth_training
from keras_longtail.recipes import run_training
from keras_longtail.recipes import Progress as _Progress
from keras_longtail.recipes import crop_and_flip as _crop_and_flip
from keras_longtail.recipes import evaluate as _evaluate
from keras_longtail.recipes import ldam_schedule as _ldam_schedule
from keras_longtail.recipes import training_pipeline as _training_pipeline

METHODS = tuple(recipes.METHODS)
_GBG = recipes.get_method("gbg").defaults
_GRADTAIL = recipes.get_method("gradtail").defaults
_GALA = recipes.get_method("gala").defaults
_SCENES = recipes.defaults.SYNTHETIC_DEPTH_SCENES


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


def _positive_int_or(keyword):
    """An argparse type: an integer >= 1, or the word `keyword` as it is."""
    def parse(text):
        if text == keyword:
            return text
        try:
            return _POSITIVE_INT(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected an integer >= 1 or {keyword}, received {text!r}") from None

    parse.__name__ = f"integer >= 1 or {keyword}"
    return parse


_PHASE_TWO_STEPS = _positive_int_or("phase_one")  # --phase-two-steps
_MEMORY_SIZE = _positive_int_or("balanced")  # --memory-size


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
    optimization.add_argument("--method", choices=tuple(recipes.METHODS), default="ce",
                              help="training method: " + ", ".join(f"{method.name} ({method.description})"
                                                                   for method in recipes.METHODS.values())
                                   + " (default: %(default)s)")
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
    optimization.add_argument("--momentum-form", choices=("keras", "pytorch"), default=None,
                              help="SGD's momentum form (CIFAR, Fashion-MNIST): keras (default, "
                                   "keras.optimizers.SGD) or pytorch (optimizers.PyTorchSGD, the papers' code's "
                                   "update at the learning-rate drops)")

    gbg = train.add_argument_group("GBG (--method gbg)")
    gbg.add_argument("--gbg-num-groups", dest="num_groups", type=_number(int, minimum=1, name="integer >= 1"),
                     default=_GBG["num_groups"], metavar="G",
                     help="number of class groups, 1 .. number of classes (default: %(default)s)")
    gbg.add_argument("--num-groups", dest="num_groups", type=_number(int, minimum=1, name="integer >= 1"),
                     action=_DeprecatedAlias, replacement="--gbg-num-groups", metavar="G",
                     help="deprecated alias of --gbg-num-groups")
    gbg.add_argument("--gbg-mode", choices=GBG_MODES, default=_GBG["gbg_mode"],
                     help="gradients alpha is solved on: backbone (every weight but the classifier, what the GBG "
                          "code runs), exact (every weight, Algorithm 2 as printed), or representation "
                          "(classifier surrogate, ~1x step time; a heuristic that trains far worse) "
                          "(default: %(default)s)")
    gbg.add_argument("--gbg-normalization", choices=GBG_NORMALIZATIONS, default="loss+",
                     help="gradient normalizer before the min-norm solve: none (the paper's Eq. 11), l2, "
                          "loss, or loss+ (what the GBG code runs) (default: loss+)")
    gbg.add_argument("--gbg-solve-every", type=_POSITIVE_INT, default=1, metavar="K",
                     help="exact mode: re-solve the min-norm weights every K steps and reuse them between "
                          "(K = 4: ~1.3x step time instead of ~2.7x; an approximation) (default: 1, the paper)")
    gbg.add_argument("--gbg-group-loss", choices=GBG_GROUP_LOSSES, default="mean",
                     help="each group's loss: mean (over the group's examples, the paper's and the GBG code's) "
                          "or class_balanced (every class present in the batch counts equally inside its group; "
                          "ours, a control) (default: %(default)s)")
    gbg.add_argument("--gbg-weighting", choices=GBG_WEIGHTINGS, default="min_norm",
                     help="how the group gradients are combined: min_norm (the MGDA solve, GBG + MOO, the "
                          "paper's and the GBG code's) or average (uniform over the groups in the batch, the "
                          "paper's ablation without MOO; about a plain step) (default: %(default)s)")

    dual = train.add_argument_group("dual-phase (--method async)")
    dual.add_argument("--async-threshold", type=_POSITIVE_INT, default=None, metavar="C",
                      help="number of phase-I (data-rich) classes (default: Many + Medium, or Many when that is "
                           "every class)")
    dual.add_argument("--phase-two-lr", dest="phase_two_learning_rate", type=_POSITIVE_FLOAT, default=None,
                      metavar="LR", help="peak learning rate of phase II, > 0 (default: --learning-rate, as in "
                                         "the paper's Algorithm 1)")
    dual.add_argument("--phase-two-steps", type=_PHASE_TWO_STEPS, default=None, metavar="N",
                      help="steps per epoch of phase II, an integer >= 1, or phase_one: as many as phase I (the "
                           "paper) (default: one pass over phase II's data, at most half the epoch)")
    dual.add_argument("--memory-size", type=_MEMORY_SIZE, default=None, metavar="M",
                      help="exemplars per phase-I class, an integer >= 1, or balanced: the mean size of the "
                           "phase-II classes (default: balanced; 10 on CIFAR-100-LT, the paper's value)")
    dual.add_argument("--phase-one-dir", default=None, metavar="DIR",
                      help="keep phase I here: trained and saved when DIR holds none, else loaded (runs that "
                           "differ only in phase II share it)")

    gradtail = train.add_argument_group("GradTail (--method gradtail; --task depth too)")
    gradtail.add_argument("--gradtail-max-weight", type=_POSITIVE_FLOAT, default=None, metavar="W",
                          help="maximum example weight, > 0 (paper: 3 on ImageNet, 15 on the toy and on depth) "
                               "(default: 3; 15 with --task depth)")
    gradtail.add_argument("--gradtail-pivot", type=_number(float, name="number"), default=None, metavar="P",
                          help=f"pivot p (default: 0; {GRADTAIL_DEPTH_PIVOT} with --task depth, the paper's best in "
                               "Table 2)")
    gradtail.add_argument("--gradtail-layers", choices=recipes.GRADTAIL_LAYERS, default=_GRADTAIL["gradtail_layers"],
                          help="gradient layers: the classifier (analytic Dense path, ~1x step time) or the "
                               "paper's last two layers (on ResNet-32 the last conv + classifier, exact analytic "
                               "per-example gradients with the batch-norm coupling, ~1.04x) (default: %(default)s)")

    gala = train.add_argument_group("GALA (--method gala) and post-hoc re-balancing")
    gala.add_argument("--gala-accumulation", choices=GALA_ACCUMULATIONS, default=_GALA["gala_accumulation"],
                      help="GALALoss statistics: paper (per-example sums) or official (the public code's "
                           "cumulative of the cumulative) (default: %(default)s)")
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
    depth.add_argument("--train-scenes", type=_POSITIVE_INT, default=_SCENES["train_scenes"], metavar="N",
                       help="synthetic-depth training scenes (default: %(default)s)")
    depth.add_argument("--test-scenes", type=_POSITIVE_INT, default=_SCENES["test_scenes"], metavar="N",
                       help="synthetic-depth test scenes (default: %(default)s)")
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


_DEPTH_ONLY = {"image_size": None, "width_multiplier": None, **_SCENES,
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
    if options["momentum_form"] is None:
        options.pop("momentum_form")
    gbg_options = {}
    normalization = options.pop("gbg_normalization")
    if normalization is not None:  # passed even when "none": GBGModel's own default is the GBG code's "loss+"
        gbg_options["normalization"] = normalization
    solve_every = options.pop("gbg_solve_every")
    if solve_every != 1:
        gbg_options["solve_every"] = solve_every
    group_loss = options.pop("gbg_group_loss")
    if group_loss != "mean":
        gbg_options["group_loss"] = group_loss
    weighting = options.pop("gbg_weighting")
    if weighting != "min_norm":
        gbg_options["weighting"] = weighting
    if gbg_options:
        options["gbg_options"] = gbg_options
    memory_size = options.pop("memory_size")
    if memory_size is not None:
        if options["method"] != "async":
            raise ValueError(f"--memory-size is a --method async option. Received: memory_size={memory_size!r} "
                             f"with method={options['method']!r}")
        options["async_options"] = {"memory_size": memory_size}
    options["gradtail_max_weight"] = (GRADTAIL_MAX_WEIGHT if options["gradtail_max_weight"] is None
                                      else options["gradtail_max_weight"])
    return options


def _depth_options(options):
    """`keras-longtail train --task depth` options for `run_depth_training` (classification-only ones dropped)."""
    if options.get("momentum_form") is not None:
        raise ValueError("--momentum-form is for the SGD recipes of classification (depth trains with Adam). "
                         f"Received: momentum_form={options['momentum_form']!r} with task='depth'")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
