"""Run a named accuracy suite and write JSON plus a Markdown table.

    python -m benchmarks.run --suite cifar10-lt --budget short --data-dir /tmp/cifar10-jpeg
    python -m benchmarks.run --suite fashion-mnist-lt --budget short --runs ce,wb --seeds 0,1,2
    python -m benchmarks.run --suite cifar10-lt --budget e60 --runs ce --seeds 0,1,2 --status
    python -m benchmarks.run --suite cifar10-lt --budget full --parallel 19 --jit --mixed-precision bfloat16 \
        --steps-per-execution epoch --augment-in-model

`--parallel N` runs the selection as N processes at a time, each one `python -m benchmarks.run` of a single
(run, seed) with the same options, its output in `<state-dir>/<suite>-<budget>/<run>-seed<seed>.log`; on a GPU
(or TPU) they share the one device (`TF_FORCE_GPU_ALLOW_GROWTH=true`, so no process takes all its memory). A
stage-two run (`wb`) starts once the stage-one run of its seed (`ce`) has finished. `--jit` compiles every
training step with XLA (`jit_compile=True`) and `--mixed-precision bfloat16|float16` trains under Keras'
`mixed_bfloat16` / `mixed_float16` dtype policy (float16 with loss scaling); `--steps-per-execution K|epoch`
runs K training steps (or a whole epoch) per call of the compiled function (fewer host round trips, the same
training); `--augment-in-model` crops and flips inside the network (`run_training(augment_in_model=True)`) instead
of in `tf.data`; all are recorded in the JSON. The
time the full 200-epoch suite needs on one H200 is estimated in `benchmarks/README.md` ("The paper budget on one
accelerator").

Runs are resumable: each checkpoints every epoch into its own folder under `--state-dir`
(default `~/.cache/keras_longtail/benchmarks/`), and the same command after an interruption
(a killed process, a machine taken away) resumes each run at its last finished epoch.
`--status` lists which runs of the selection are done, partial (epoch k of E) or pending.
A run whose JSON is already in `benchmarks/results/` is skipped unless `--rerun` is given,
which trains it afresh and replaces the JSON.

Every run of a suite uses the same data, seed, augmentation, schedule and epoch budget
(`keras_longtail.recipes.run_training`, the job behind `keras-longtail train`); only the
method and its own arguments differ. Each run is a registered method
(`keras_longtail.recipes.METHODS`) with its registered defaults, changed only where the
run's label says so; a run of an unregistered method, or with an option no registered
method owns, is an error when this module is imported. Results go to `benchmarks/results/<suite>-<budget>/`:
one JSON per run and seed, and `table.md` with mean ± std over the seeds present.
"""

import argparse
import contextlib
import inspect
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time

from benchmarks import _timing
from keras_longtail import recipes

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
# Run state (per-epoch checkpoints) and trained models are kept outside the repository, so an interrupted run
# resumes and later runs (e.g. a stage 2) can start from them.
STATE = pathlib.Path(os.environ.get("KERAS_LONGTAIL_STATE_DIR",
                                    pathlib.Path.home() / ".cache" / "keras_longtail" / "benchmarks"))
MODELS = pathlib.Path(os.environ.get("KERAS_LONGTAIL_BENCHMARK_MODELS", STATE / "models"))

# Epochs per budget; the schedule (warm-up, decays at 80 % and 90 %) scales with it. "smoke" (3) and "short"
# (12) are the CPU smoke budgets (~50-60 s per CIFAR-10-LT epoch on the 2-core machine); e30 / e60 / e100 are
# the points of the budget curve; "full" is the papers' 200 epochs.
BUDGETS = {"smoke": 3, "short": 12, "e30": 30, "e60": 60, "e100": 100, "full": 200}

# Decoupled (Keras) weight decay of every run that uses one; one value everywhere (`keras_longtail.recipes`).
WEIGHT_DECAY = recipes.WEIGHT_DECAY

SUITES = {
    "cifar10-lt": {"dataset": "cifar10-lt", "imbalance_factor": 100},
    "fashion-mnist-lt": {"dataset": "fashion-mnist-lt", "imbalance_factor": 100},
    "digits-lt": {"dataset": "digits-lt", "imbalance_factor": 20},
}

# GBG's pipeline before its defaults became the GBG code's (classifier-gradient grouping with batch statistics,
# shuffled batches): kept by the runs below that have results from then, so re-running them repeats those runs.
GBG_EARLIER = {"sampler": "random", "group_classes": {"gradients": "classifier", "training": True}}

# label -> (run_training keyword arguments, the rows each run reports: (row label, results key))
RUNS = {
    "ce-wd0": ({"method": "ce", "weight_decay": 0.0}, [("CE (WD=0)", "accuracy")]),
    "ce": ({"method": "ce", "weight_decay": WEIGHT_DECAY}, [("CE + WD", "accuracy")]),
    "gala": ({"method": "gala", "weight_decay": WEIGHT_DECAY, "rebalance_tau": 1.0},
             [("GALA + WD", "accuracy"), ("GALA + WD + PN (τ=1)", "rebalanced_accuracy")]),
    "gala-official": ({"method": "gala", "gala_accumulation": "official", "weight_decay": WEIGHT_DECAY,
                       "rebalance_tau": 1.0},
                      [("GALA, official accumulation + WD", "accuracy"),
                       ("GALA, official accumulation + WD + PN (τ=1)", "rebalanced_accuracy")]),
    "gradtail": ({"method": "gradtail", "weight_decay": WEIGHT_DECAY}, [("GradTail (classifier) + WD", "accuracy")]),
    # GBG with run_training's defaults, which are the GBG code's (WickyLee1998/GBG_v1): grouping from backbone
    # gradients with batch norm in inference mode, alpha solved on the backbone's loss+-normalized gradients, plus
    # the paper's group-aware completion sampler (not in the code, which shuffles: gbg-official-random); 4 groups. Our CE + WD recipe otherwise (no BCL).
    "gbg-official": ({"method": "gbg", "weight_decay": WEIGHT_DECAY},
                     [("GBG (GBG code's defaults: backbone alpha, loss+) + GAC sampler + WD", "accuracy")]),
    # Control for the diagnosis "GBG balances groups, not classes" (issue 17): gbg-official with class-balanced
    # group losses (every class present in the batch counts equally inside its group; not in the paper or code).
    "gbg-official-cb": ({"method": "gbg", "gbg_options": {"group_loss": "class_balanced"},
                         "weight_decay": WEIGHT_DECAY},
                        [("GBG (official defaults), class-balanced group losses + WD", "accuracy")]),
    # Controls for gbg-official (issue 17), each about a CE run's cost: alpha from the classifier's gradients
    # instead of the backbone's (representation mode), and alpha solved once at step 0 and then held.
    "gbg-official-classifier": ({"method": "gbg", "gbg_mode": "representation", "weight_decay": WEIGHT_DECAY},
                                [("GBG (official defaults), alpha from the classifier's gradients + WD",
                                  "accuracy")]),
    "gbg-official-frozen": ({"method": "gbg", "gbg_options": {"solve_every": 10**9}, "weight_decay": WEIGHT_DECAY},
                            [("GBG (official defaults), alpha solved at step 0 only, then held + WD", "accuracy")]),
    # The paper's ablation without MOO (its Table 6, "average strategy to merge the gradients of groups"): the same
    # grouping, sampler and group losses, alpha uniform over the groups in the batch, no solve (a CE run's cost).
    # Tells the grouping's average re-weighting (a group of 50 images gets 1/4 of every step) from the per-step solve.
    "gbg-official-average": ({"method": "gbg", "gbg_options": {"weighting": "average"}, "weight_decay": WEIGHT_DECAY},
                             [("GBG (official defaults) without MOO: groups averaged + WD", "accuracy")]),
    # The l2 control at a CE run's cost: gbg-official-classifier (which collapses like gbg-official, 41.4 vs 36.3 at
    # seed 0) with l2-normalized group gradients instead of loss+. Tells whether loss+ is what the per-step solve
    # needs to go wrong, before gbg-official-l2 spends a GBG run's cost (about 3.8x a CE run on an AVX2-only CPU).
    "gbg-official-classifier-l2": ({"method": "gbg", "gbg_mode": "representation",
                                    "gbg_options": {"normalization": "l2"}, "weight_decay": WEIGHT_DECAY},
                                   [("GBG (official defaults), alpha from the classifier's l2-normalized gradients"
                                     " + WD", "accuracy")]),
    # Control for loss+ (issue 17): with loss+, a group whose loss is far above the others' gets most of alpha
    # (CIFAR-10-LT after 60 CE steps: 0.82-0.89 on the one-class group of the rarest class, ||d|| 22-25x the CE
    # gradient; results/gbg_diagnostics_cifar10.json). l2-normalized backbone gradients, all else official.
    "gbg-official-l2": ({"method": "gbg", "gbg_options": {"normalization": "l2"}, "weight_decay": WEIGHT_DECAY},
                        [("GBG (official defaults), l2-normalized group gradients + WD", "accuracy")]),
    # The same without the GAC sampler: exactly what the GBG code's step runs (shuffled batches).
    "gbg-official-random": ({"method": "gbg", "gbg_options": {"sampler": "random"}, "weight_decay": WEIGHT_DECAY},
                            [("GBG (GBG code's defaults), shuffled batches + WD", "accuracy")]),
    # GBG: exact per-group gradients, no normalizer (Eq. 11 of the paper), 4 groups.
    "gbg": ({"method": "gbg", "gbg_mode": "exact", "gbg_options": {**GBG_EARLIER, "normalization": "none"},
             "weight_decay": WEIGHT_DECAY},
            [("GBG (exact, Eq. 11 min-norm, 4 groups) + WD", "accuracy")]),
    # Exact GBG with unit-norm group gradients before the solve (MGDA's normalized variant): Eq. 11's min-norm
    # point follows the smallest (best-fit, head) group gradient and starves the tail groups.
    "gbg-l2": ({"method": "gbg", "gbg_mode": "exact", "gbg_options": {**GBG_EARLIER, "normalization": "l2"},
                "weight_decay": WEIGHT_DECAY},
               [("GBG (exact, l2-normalized group gradients) + WD", "accuracy")]),
    # Control for gbg-l2: alpha solved once (l2, at step 0; about uniform there) and held for the whole run, so
    # the groups are re-balanced but the per-step min-norm solve is gone (about a plain step's cost).
    "gbg-l2-frozen": ({"method": "gbg", "gbg_mode": "exact",
                       "gbg_options": {**GBG_EARLIER, "normalization": "l2", "solve_every": 10**9},
                       "weight_decay": WEIGHT_DECAY},
                      [("GBG control: l2 alpha solved at step 0 only, then held + WD", "accuracy")]),
    # Exact GBG with alpha re-solved every 4th step and reused between (about 1.3-1.5x a plain step).
    "gbg-solve4": ({"method": "gbg", "gbg_mode": "exact",
                    "gbg_options": {**GBG_EARLIER, "normalization": "none", "solve_every": 4},
                    "weight_decay": WEIGHT_DECAY},
                   [("GBG (exact, Eq. 11, alpha re-solved every 4 steps) + WD", "accuracy")]),
    # BatchNorm statistics 10x faster (Keras 0.9 = PyTorch's default 0.1, the reference code's).
    "gbg-bn09": ({"method": "gbg", "gbg_mode": "exact", "gbg_options": {**GBG_EARLIER, "normalization": "none"},
                  "batch_norm_momentum": 0.9, "weight_decay": WEIGHT_DECAY},
                 [("GBG (exact, Eq. 11) + WD, BN momentum 0.9", "accuracy")]),
    # CE + WD with PyTorch's SGD momentum form (`PyTorchSGD`): the reference code's update at the learning-rate drops.
    "ce-ptsgd": ({"method": "ce", "weight_decay": WEIGHT_DECAY, "momentum_form": "pytorch"},
                 [("CE + WD, PyTorch's SGD momentum form", "accuracy")]),
    "ce-bn09": ({"method": "ce", "batch_norm_momentum": 0.9, "weight_decay": WEIGHT_DECAY},
                [("CE + WD, BN momentum 0.9", "accuracy")]),
    # The GBG code's hard-coded normalizer, loss+ (loss x l2 norm), with exact gradients.
    "gbg-lossplus": ({"method": "gbg", "gbg_mode": "exact", "gbg_options": {**GBG_EARLIER, "normalization": "loss+"},
                      "weight_decay": WEIGHT_DECAY},
                     [("GBG (exact, loss+ normalizer as the GBG code) + WD", "accuracy")]),
    # The earlier default: alpha from the classifier's gradients, loss+ normalizer.
    "gbg-representation": ({"method": "gbg", "gbg_mode": "representation",
                            "gbg_options": {**GBG_EARLIER, "normalization": "loss+"},
                            "weight_decay": WEIGHT_DECAY},
                           [("GBG (representation, loss+ normalizer) + WD", "accuracy")]),
    # Every dual-phase run keeps its phase I in the models folder ("phase_one_from"): the runs below differ only
    # in phase II, so they load the phase I of "async" (same suite, budget and seed) and train phase II alone.
    # The memory is pinned at 10 exemplars per class (the paper's Places-LT value), whatever the default is: the
    # phase I this run saves (95 steps per epoch here) is the one every async-* run of the seed loads.
    "async": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
               "async_options": {"memory_size": 10}},
              [("Dual-phase, 10 exemplars per phase-I class (L_dis: unit features, T = 0.01, batch mean) + WD",
                "accuracy")]),
    # Phase II (2 steps per epoch on ~213 images here) at a tenth of phase I's learning rate. Every run below
    # states its memory size, so that none changes meaning with DualPhaseTraining's default.
    "async-p2lr": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_two_learning_rate": 0.01,
                    "phase_one_from": "async",
                    "async_options": {"memory_size": 10}},
                   [("Dual-phase, 10 exemplars per phase-I class, phase II at lr 0.01 + WD", "accuracy")]),
    # Eq. 6-8 as printed (DualPhaseTraining's defaults before they changed; the runs that collapsed).
    "async-paper": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                     "async_options": {"memory_size": 10, "retentive_temperature": 1.0, "retentive_normalize": False,
                                       "retentive_reduction": "sum"}},
                    [("Dual-phase, 10 exemplars, Eq. 6-8 as printed (T = 1, raw features, sum) + WD", "accuracy")]),
    "async-bn-inference": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                            "async_options": {"memory_size": 10, "phase_two_batch_norm": "inference"}},
                           [("Dual-phase, 10 exemplars, batch norm frozen in phase II + WD", "accuracy")]),
    "async-p2lr-bn-inference": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                                 "phase_two_learning_rate": 0.01,
                                 "async_options": {"memory_size": 10, "phase_two_batch_norm": "inference"}},
                                [("Dual-phase, 10 exemplars, phase II at lr 0.01 with batch norm frozen + WD",
                                  "accuracy")]),
    "async-m20": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                   "async_options": {"memory_size": 20}},
                  [("Dual-phase, 20 exemplars per phase-I class + WD", "accuracy")]),
    "async-m50": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                   "async_options": {"memory_size": 50}},
                  [("Dual-phase, 50 exemplars per phase-I class + WD", "accuracy")]),
    "async-m100": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                    "async_options": {"memory_size": 100}},
                   [("Dual-phase, 100 exemplars per phase-I class + WD", "accuracy")]),
    # As many exemplars per head class as a tail class has images on average (CIFAR-10-LT IF 100: 67).
    "async-mbal": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                    "async_options": {"memory_size": "balanced"}},
                   [("Dual-phase, balanced memory (mean phase-II class count per phase-I class) + WD",
                     "accuracy")]),
    "async-p2lr-m100": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                         "phase_two_learning_rate": 0.01, "async_options": {"memory_size": 100}},
                        [("Dual-phase, 100 exemplars per phase-I class, phase II at lr 0.01 + WD", "accuracy")]),
    "async-p2lr-m20": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                        "phase_two_learning_rate": 0.01, "async_options": {"memory_size": 20}},
                       [("Dual-phase, 20 exemplars per phase-I class, phase II at lr 0.01 + WD", "accuracy")]),
    # The paper's phase-II length: as many steps as phase I (ours: one pass over its ~213 images per epoch).
    "async-p2long": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                      "async_options": {"memory_size": 10},
                      "phase_two_steps": "phase_one"},
                     [("Dual-phase, 10 exemplars, phase II as long as phase I (the paper) + WD", "accuracy")]),
    "async-p2lr-long": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                         "async_options": {"memory_size": 10},
                         "phase_two_learning_rate": 0.01, "phase_two_steps": "phase_one"},
                        [("Dual-phase, 10 exemplars, phase II as long as phase I at lr 0.01 + WD", "accuracy")]),
    # The paper's phase-II length at the default (balanced) memory.
    "async-mbal-long": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                         "async_options": {"memory_size": "balanced"}, "phase_two_steps": "phase_one"},
                        [("Dual-phase, balanced memory, phase II as long as phase I (the paper) + WD", "accuracy")]),
    "async-t01": ({"method": "async", "weight_decay": WEIGHT_DECAY, "phase_one_from": "async",
                   "async_options": {"memory_size": 10, "retentive_temperature": 0.1, "retentive_normalize": False,
                                     "retentive_reduction": "sum_over_batch_size"}},
                  [("Dual-phase, 10 exemplars, retentive T = 0.1 and batch mean + WD", "accuracy")]),
    # Stage 2 of weight balancing on the saved "ce" (CE + WD) model of the same suite, budget and seed.
    "wb": ({"method": "wb", "weight_decay": WEIGHT_DECAY, "stage_one_from": "ce"},
           [("WD + stage 2 (CB + WD + MaxNorm)", "accuracy")]),
}


# run_training's own keyword arguments a run may set besides its method's options (the suite, budget, seed and
# paths are the harness's).
_RUN_OPTIONS = {"method", "weight_decay", "rebalance_tau", "batch_norm_momentum", "learning_rate", "model",
                "batch_size", "stage_one_from", "phase_one_from", "momentum_form"}


def _check_run(label, kwargs):
    """A run must name a registered method and only options of `run_training` or of a registered method."""
    recipes.get_method(kwargs.get("method", "ce"))
    unknown = sorted(set(kwargs) - _RUN_OPTIONS - set(recipes.method_options()))
    if unknown:
        raise ValueError(f"Expected run {label!r} to set options of run_training or of a registered method. "
                         f"Received: {unknown}")


def register_run(label, kwargs, rows):
    """Adds a run to the harness (used by the method modules' benchmark entries)."""
    _check_run(label, kwargs)
    RUNS[label] = (kwargs, rows)


for _label, (_kwargs, _rows) in RUNS.items():
    _check_run(_label, _kwargs)


MIXED_PRECISION = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@contextlib.contextmanager
def training_options(jit_compile=False, mixed_precision=None, steps_per_execution=1):
    """Within the block, models built use the `mixed_precision` dtype policy, every `Model.compile` gets
    `jit_compile=True` when asked, and every `Model.fit` runs `steps_per_execution` training steps per call of the
    compiled function: `recipes.run_training` has no such arguments, so they are set around it.

    `steps_per_execution` is 1, an integer K that divides the steps per epoch of every `fit` given
    `steps_per_epoch` (Keras runs whole executions: 97 steps at K = 8 would train 104 steps per epoch, so that is
    an error, raised when that `fit` starts; dual-phase's two fits have different lengths, and what trained before
    stays in the run's state directory), or `"epoch"`, one call per epoch (each `fit` given `steps_per_epoch` runs that many steps per call;
    one without it keeps its compiled value). More steps per call cut the per-step host work on an accelerator and
    change no number of the training. The global dtype policy, `keras.Model.compile` and `keras.Model.fit` are
    restored on exit."""
    import keras

    if mixed_precision is not None and mixed_precision not in MIXED_PRECISION:
        raise ValueError(f"Expected `mixed_precision` in {sorted(MIXED_PRECISION)} or None. "
                         f"Received: mixed_precision={mixed_precision!r}")
    if steps_per_execution != "epoch" and (isinstance(steps_per_execution, bool)
                                           or not isinstance(steps_per_execution, int) or steps_per_execution < 1):
        raise ValueError(f"Expected `steps_per_execution` to be an integer >= 1 or 'epoch'. "
                         f"Received: steps_per_execution={steps_per_execution!r}")
    policy = keras.config.dtype_policy()
    compile_, fit_ = keras.Model.compile, keras.Model.fit
    if mixed_precision is not None:
        keras.config.set_dtype_policy(MIXED_PRECISION[mixed_precision])
    if jit_compile:
        def compile_with_xla(self, *args, **kwargs):
            kwargs["jit_compile"] = True
            return compile_(self, *args, **kwargs)

        keras.Model.compile = compile_with_xla
    if steps_per_execution != 1:
        signature = inspect.signature(fit_)

        def fit_in_executions(self, *args, **kwargs):
            steps = signature.bind(self, *args, **kwargs).arguments.get("steps_per_epoch")
            value = steps if steps_per_execution == "epoch" else steps_per_execution
            if steps is not None and steps % value:
                raise ValueError(f"Expected the steps per epoch of every fit to be a multiple of "
                                 f"`steps_per_execution` (Keras would round them up to whole executions), or "
                                 f"steps_per_execution='epoch'. Received: steps_per_execution={value} for "
                                 f"steps_per_epoch={steps}")
            if value is not None and value != self.steps_per_execution:
                self.steps_per_execution = value
                self.train_function = None  # traced again with the new number of steps per call
            return fit_(self, *args, **kwargs)

        keras.Model.fit = fit_in_executions
    try:
        yield
    finally:
        keras.Model.compile, keras.Model.fit = compile_, fit_
        keras.config.set_dtype_policy(policy)


def run_suite(suite, budget, runs, seeds, data_dir=None, epochs=None, verbose=2, results_dir=RESULTS,
              state_dir=STATE, rerun=False, jit_compile=False, mixed_precision=None, steps_per_execution=1,
              augment_in_model=False):
    out_dir = pathlib.Path(results_dir) / f"{suite}-{budget}"
    out_dir.mkdir(parents=True, exist_ok=True)
    for label in runs:
        for seed in seeds:
            path = out_dir / f"{label}-seed{seed}.json"
            run_state = pathlib.Path(state_dir) / f"{suite}-{budget}" / f"{label}-seed{seed}"
            if path.exists() and not rerun:
                print(f"[benchmarks] {path.name} exists, skipped (--rerun replaces it)", flush=True)
                continue
            marker = run_state / "rerun"  # present while a --rerun is unfinished, so that it resumes
            if rerun and run_state.exists() and not marker.exists():
                shutil.rmtree(run_state)  # a rerun trains afresh
            run_state.mkdir(parents=True, exist_ok=True)
            if rerun:
                marker.write_text("")
            start = time.time()
            MODELS.mkdir(parents=True, exist_ok=True)
            kwargs = dict(RUNS[label][0])  # afresh for every seed: the stage-one path below is per seed
            stage_one = kwargs.pop("stage_one_from", None)
            if stage_one is not None:
                kwargs["stage_one_model"] = str(MODELS / f"{suite}-{budget}-{stage_one}-seed{seed}.keras")
                if not pathlib.Path(kwargs["stage_one_model"]).exists():
                    raise FileNotFoundError(f"run {label!r} needs the saved {stage_one!r} model of this suite and "
                                            f"seed; run it first. Missing: {kwargs['stage_one_model']}")
            phase_one = kwargs.pop("phase_one_from", None)
            if phase_one is not None:  # trained and saved there by the first run of this seed, loaded by the rest
                kwargs["phase_one_dir"] = str(MODELS / f"{suite}-{budget}-{phase_one}-seed{seed}-phase-one")
            print(f"[benchmarks] {suite}-{budget} {label} seed {seed}: state in {run_state}", flush=True)
            with training_options(jit_compile, mixed_precision, steps_per_execution):
                results = recipes.run_training(**SUITES[suite], **kwargs, epochs=epochs or BUDGETS[budget],
                                               data_dir=data_dir, seed=seed, verbose=verbose,
                                               state_dir=str(run_state), augment_in_model=augment_in_model,
                                               save_model=str(MODELS / f"{suite}-{budget}-{label}-seed{seed}.keras"))
            results["run"] = label
            if jit_compile or mixed_precision or steps_per_execution != 1:
                results.update(jit_compile=bool(jit_compile), mixed_precision=mixed_precision,
                               steps_per_execution=steps_per_execution)
            results["command"] = " ".join(["python -m benchmarks.run"] + sys.argv[1:])
            results["machine"] = f"{_timing.machine()}, Python {platform.python_version()}"
            results["wall_seconds"] = round(time.time() - start, 1)
            temporary = path.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(results, indent=2))
            os.replace(temporary, path)  # never half a result
            marker.unlink(missing_ok=True)
            print(recipes.format_shot_table(results), flush=True)
    table = write_table(out_dir)
    print(table)


def _job_command(suite, budget, label, seed, options):
    """`python -m benchmarks.run` of one (run, seed) with the parent's options."""
    command = [sys.executable, "-m", "benchmarks.run", "--suite", suite, "--budget", budget, "--runs", label,
               "--seeds", str(seed)]
    for flag, value in options.items():
        if value is True:
            command.append(f"--{flag}")
        elif value is not None and value is not False:
            command += [f"--{flag}", str(value)]
    return command


def run_parallel(suite, budget, runs, seeds, parallel, results_dir=RESULTS, state_dir=STATE, poll_seconds=0.5,
                 **options):
    """Runs every (run, seed) of the selection as its own process, at most `parallel` at a time.

    `options` are the command-line options the processes get (`epochs`, `data_dir`, `verbose`, `rerun`, `jit`,
    `mixed_precision`, `steps_per_execution`, `augment_in_model`, as in `main`). A stage-two run waits for the
    stage-one run of its seed when that is in the selection. Returns {(label, seed): exit code}; every process
    writes its output to `<state_dir>/<suite>-<budget>/<label>-seed<seed>.log`.
    """
    if parallel < 1:
        raise ValueError(f"Expected `parallel` >= 1. Received: parallel={parallel}")
    options = {k.replace("_", "-"): v for k, v in options.items()}
    options.update({"results-dir": str(results_dir), "state-dir": str(state_dir)})
    pending = [(label, seed) for label in runs for seed in seeds]
    logs = pathlib.Path(state_dir) / f"{suite}-{budget}"
    logs.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ, TF_FORCE_GPU_ALLOW_GROWTH="true")  # N processes share one accelerator
    root = pathlib.Path(__file__).resolve().parent.parent
    running, codes = {}, {}

    def waits_for(job):
        """A run that loads another run's stage 1 or phase I starts when that run has finished."""
        stage_one = RUNS[job[0]][0].get("stage_one_from")
        phase_one = RUNS[job[0]][0].get("phase_one_from")
        before = [label for label in (stage_one, phase_one) if label is not None and label != job[0]]
        return any((label, job[1]) in pending + list(running) for label in before)

    while pending or running:
        for job in [j for j in pending if not waits_for(j)][: parallel - len(running)]:
            pending.remove(job)
            log = open(logs / f"{job[0]}-seed{job[1]}.log", "w")
            running[job] = (subprocess.Popen(_job_command(suite, budget, *job, options), cwd=root, env=environment,
                                             stdout=log, stderr=subprocess.STDOUT), log, time.time())
            print(f"[benchmarks] started {job[0]} seed {job[1]} (log {log.name})", flush=True)
        for job, (process, log, start) in list(running.items()):
            if process.poll() is not None:
                log.close()
                codes[job] = process.returncode
                del running[job]
                state = "done" if process.returncode == 0 else f"FAILED (exit {process.returncode}, see {log.name})"
                print(f"[benchmarks] {job[0]} seed {job[1]}: {state} after {time.time() - start:.0f} s", flush=True)
        if running:
            time.sleep(poll_seconds)
    return codes


def run_status(suite, budget, runs, seeds, results_dir=RESULTS, state_dir=STATE):
    """Lines `label seed: done | partial (phase epoch k of E at loss L) | pending` for the selected runs (the
    training loss of the last finished epoch, where the run's state recorded it)."""
    lines = []
    for label in runs:
        for seed in seeds:
            path = pathlib.Path(results_dir) / f"{suite}-{budget}" / f"{label}-seed{seed}.json"
            progress = pathlib.Path(state_dir) / f"{suite}-{budget}" / f"{label}-seed{seed}" / "progress.json"
            rerun = progress.parent.joinpath("rerun").exists()
            if path.exists() and not rerun:
                accuracy = json.loads(path.read_text()).get("accuracy", {}).get("overall")
                state = f"done ({accuracy} % overall)"
            elif progress.exists():
                kept = json.loads(progress.read_text())
                phases, logs = kept["phases"], kept.get("logs", {})

                def last_loss(name):  # the training loss of the phase's last finished epoch, when recorded
                    loss = (logs.get(name) or [{}])[-1].get("loss")
                    return "" if loss is None else f" at loss {loss:.4g}"

                done = ", ".join(f"{name} epoch {p['epoch']} of {p['epochs']}{last_loss(name)}"
                                 for name, p in phases.items())
                state = f"partial ({done or 'started, no epoch done'}{', rerun' if rerun else ''})"
            else:
                state = "pending"
            lines.append(f"{suite}-{budget} {label} seed {seed}: {state}")
    return lines


def write_table(out_dir):
    """Markdown table over every JSON in `out_dir` (mean ± std over seeds)."""
    rows = {}
    meta = None
    for path in sorted(out_dir.glob("*.json")):
        results = json.loads(path.read_text())
        meta = meta or results
        _, row_specs = RUNS.get(results["run"], ({}, [(results["run"], "accuracy")]))
        for row_label, key in row_specs:
            if key in results:
                rows.setdefault(row_label, []).append(results[key])
    splits = ("overall", "many", "medium", "few")
    lines = [
        f"{meta['dataset']} IF {meta['imbalance_factor']:g}, {meta['model']}, {meta['epochs']} epochs, "
        f"batch {meta['batch_size']} ({meta['machine']})" if meta else "no results",
        "",
        "| method | seeds | " + " | ".join(splits) + " |",
        "|---|---|" + "---|" * len(splits),
    ]
    for row_label, accuracies in rows.items():
        cells = []
        for split in splits:
            values = [a[split] for a in accuracies if split in a]
            if not values:
                cells.append("—")
            elif len(values) == 1:
                cells.append(f"{values[0]:.1f}")
            else:
                cells.append(f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}")
        lines.append(f"| {row_label} | {len(accuracies)} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (out_dir / "table.md").write_text(table)
    return table


def _steps_per_execution(text):
    if text == "epoch":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'epoch', got {text!r}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), required=True)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="short")
    parser.add_argument("--runs", default=None, help=f"comma-separated subset of {sorted(RUNS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="override the budget's epochs")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--state-dir", default=str(STATE),
                        help=f"per-run checkpoints for resuming (default: {STATE})")
    parser.add_argument("--status", action="store_true", help="list done / partial / pending runs and exit")
    parser.add_argument("--rerun", action="store_true", help="train runs whose JSON exists again and replace it")
    parser.add_argument("--parallel", type=int, default=0,
                        help="run the selection as this many processes at a time, one (run, seed) each, sharing "
                             "the device (default: 0, one after another in this process)")
    parser.add_argument("--jit", action="store_true", help="compile every training step with XLA (jit_compile=True)")
    parser.add_argument("--mixed-precision", choices=sorted(MIXED_PRECISION), default=None,
                        help="train under the mixed_bfloat16 or mixed_float16 dtype policy (default: float32)")
    parser.add_argument("--steps-per-execution", type=_steps_per_execution, default=1,
                        help="training steps per call of the compiled step function: an integer that divides the "
                             "steps per epoch, or 'epoch' (one call per epoch); default 1. More cut the per-step "
                             "host work on an accelerator and change no result")
    parser.add_argument("--augment-in-model", action="store_true",
                        help="crop and flip inside the network (in the compiled step, on the accelerator) instead "
                             "of in the tf.data pipeline")
    parser.add_argument("--results-dir", default=str(RESULTS), help=f"where results go (default: {RESULTS})")
    args = parser.parse_args(argv)
    runs = args.runs.split(",") if args.runs else list(RUNS)
    unknown = [r for r in runs if r not in RUNS]
    if unknown:
        parser.error(f"unknown runs {unknown}; known: {sorted(RUNS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.status:
        print("\n".join(run_status(args.suite, args.budget, runs, seeds, results_dir=args.results_dir,
                                    state_dir=args.state_dir)))
        return 0
    if args.parallel < 0:
        parser.error(f"--parallel must be >= 0, got {args.parallel}")
    if args.parallel:
        codes = run_parallel(args.suite, args.budget, runs, seeds, args.parallel, results_dir=args.results_dir,
                             state_dir=args.state_dir, epochs=args.epochs, data_dir=args.data_dir,
                             verbose=args.verbose, rerun=args.rerun, jit=args.jit,
                             mixed_precision=args.mixed_precision,
                             steps_per_execution=None if args.steps_per_execution == 1 else args.steps_per_execution,
                             augment_in_model=args.augment_in_model)
        out_dir = pathlib.Path(args.results_dir) / f"{args.suite}-{args.budget}"
        out_dir.mkdir(parents=True, exist_ok=True)
        print(write_table(out_dir))
        failed = sorted(f"{label} seed {seed}" for (label, seed), code in codes.items() if code != 0)
        if failed:
            print(f"[benchmarks] failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    run_suite(args.suite, args.budget, runs, seeds, data_dir=args.data_dir, epochs=args.epochs,
              verbose=args.verbose, results_dir=args.results_dir, state_dir=args.state_dir, rerun=args.rerun,
              jit_compile=args.jit, mixed_precision=args.mixed_precision,
              steps_per_execution=args.steps_per_execution, augment_in_model=args.augment_in_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
