"""The toolkit's training methods, each registered once with its defaults and its recipe.

Every recipe gets the `run_training` job (`keras_longtail.recipes.run_training.Job`: the
data, the network, the optimizer factory, the shared compile-and-fit) and the method's
options (its registered defaults updated with the caller's values), trains, and returns the
trained network. The methods come in through the public namespaces only
(`keras_longtail.training`, `.losses`, `.callbacks`, `.gbg`, `.data`).

To add a method, write its recipe and register it (see `keras_longtail.recipes.Method`):

```python
register_method(Method("name", "what it trains", defaults={"name_option": 1.0}, train=train_name))
```

`keras-longtail train --method name` and `run_training(method="name", name_option=...)` then
run it (a new command-line flag for its option is added in `keras_longtail.cli`).
"""

import json
import math
import os

from keras_longtail._internal.defaults import GRADTAIL_MAX_WEIGHT
from keras_longtail.recipes.progress import announce
from keras_longtail.recipes.progress import with_progress
from keras_longtail.recipes.registry import Method
from keras_longtail.recipes.registry import register_method

GBG_MODES = ("backbone", "exact", "representation")
GBG_SAMPLERS = ("group_aware_completion", "random")
GBG_NORMALIZATIONS = ("none", "l2", "loss", "loss+")
GBG_GROUP_LOSSES = ("mean", "class_balanced")
GBG_WEIGHTINGS = ("min_norm", "average")
GALA_ACCUMULATIONS = ("paper", "official")
GRADTAIL_LAYERS = ("classifier", "last-two")


def _train_ce(job, options):
    """Cross-entropy: the network as it is, the shared loss and schedule."""
    return job.fit(job.network, label="ce")


def _check_gala(options):
    if options["gala_accumulation"] not in GALA_ACCUMULATIONS:
        raise ValueError(f"Expected `gala_accumulation` in {list(GALA_ACCUMULATIONS)}. "
                         f"Received: gala_accumulation={options['gala_accumulation']!r}")


def _train_gala(job, options):
    """`GALALoss(accumulation=gala_accumulation)` with the `GALAAccumulator` callback."""
    from keras_longtail import callbacks as lt_callbacks
    from keras_longtail import losses as lt_losses

    loss = lt_losses.GALALoss(job.num_classes, accumulation=options["gala_accumulation"])
    return job.fit(job.network, label="gala", loss=loss, callbacks=[lt_callbacks.GALAAccumulator()])


def _check_gradtail(options):
    from keras_longtail._internal import validation as _validation

    _validation.check_float("gradtail_max_weight", options["gradtail_max_weight"], minimum=0.0,
                            min_inclusive=False)
    if options["gradtail_layers"] not in GRADTAIL_LAYERS:
        raise ValueError(f"Expected `gradtail_layers` in {list(GRADTAIL_LAYERS)}. "
                         f"Received: gradtail_layers={options['gradtail_layers']!r}")


def _train_gradtail(job, options):
    """`GradTailModel` (pivot 0, decay 0.99, `GradTailSigmoid(gradtail_max_weight)`) on the classifier or,
    with `gradtail_layers="last-two"`, on the paper's last two layers."""
    from keras_longtail import training as lt_training

    network = lt_training.GradTailModel.from_model(
        job.network, gradient_layers=["classifier"] if options["gradtail_layers"] == "classifier" else None,
        activation=lt_training.GradTailSigmoid(max_weight=options["gradtail_max_weight"]))
    return job.fit(network, label="gradtail")


def _check_gbg(options):
    from keras_longtail._internal import validation as _validation

    _validation.check_int("num_groups", options["num_groups"], minimum=1)
    if options["gbg_mode"] not in GBG_MODES:
        raise ValueError(f"Expected `gbg_mode` in {list(GBG_MODES)}. Received: gbg_mode={options['gbg_mode']!r}")
    sampler = (options["gbg_options"] or {}).get("sampler", "group_aware_completion")
    if sampler not in GBG_SAMPLERS:
        raise ValueError(f"Expected gbg_options['sampler'] in {list(GBG_SAMPLERS)}. Received: sampler={sampler!r}")
    group_loss = (options["gbg_options"] or {}).get("group_loss", "mean")
    if group_loss not in GBG_GROUP_LOSSES:  # checked before the grouping pass, not after it
        raise ValueError(f"Expected gbg_options['group_loss'] in {list(GBG_GROUP_LOSSES)}. "
                         f"Received: group_loss={group_loss!r}")
    weighting = (options["gbg_options"] or {}).get("weighting", "min_norm")
    if weighting not in GBG_WEIGHTINGS:
        raise ValueError(f"Expected gbg_options['weighting'] in {list(GBG_WEIGHTINGS)}. "
                         f"Received: weighting={weighting!r}")


def _train_gbg(job, options):
    """GBG: the classes grouped once on the initialized network (`group_classes` with its defaults, the GBG
    code's: backbone gradients, batch norm in inference mode, the un-augmented training set), then
    `GBGModel(mode=gbg_mode, **gbg_options)` on the group-aware-completion batches (or shuffled ones with
    `gbg_options["sampler"] = "random"`). `gbg_options["group_classes"]` goes to `group_classes`; every other
    key (e.g. `"normalization"`, `"solve_every"`, `"group_loss"`, `"weighting"`) to the model."""
    from keras_longtail import data as lt_data
    from keras_longtail import gbg as lt_gbg
    from keras_longtail import training as lt_training

    num_classes, num_groups, loaded = job.num_classes, options["num_groups"], job.loaded
    model_options = dict(options["gbg_options"] or {})
    sampler = model_options.pop("sampler", "group_aware_completion")
    grouping_options = {"projection_dim": None if num_classes <= 1000 else 1024,
                        **model_options.pop("group_classes", {})}
    kept = job.progress.kept("gbg_grouping")
    if kept is not None:
        # A resumed run: the grouping its first call computed on the initial model, never a recomputed one (the
        # checkpoint restores it into the model; the sampler must use the same one).
        grouping = lt_gbg.ClassGrouping.from_config(kept)
        if (grouping.num_classes, grouping.num_groups) != (num_classes, num_groups):
            raise ValueError(f"Expected num_groups={grouping.num_groups} over {grouping.num_classes} classes, as in "
                             f"the run kept in `state_dir` (another run's state, or changed arguments?). "
                             f"Received: num_groups={num_groups} over {num_classes} classes")
        announce(job.verbose, f"GBG: the interrupted run's grouping of {num_classes} classes into "
                              f"{grouping.num_groups} groups, from its state directory")
    else:
        # GBG Algorithm 1, once, on the initialized model: one pass over the un-augmented training set.
        announce(job.verbose, f"GBG: grouping {num_classes} classes into {num_groups} groups from their "
                              f"{grouping_options.get('gradients', 'backbone')} gradients (Algorithm 1, one pass "
                              f"over {loaded.num_train} training images)")
        batches = with_progress(loaded.train.batch(256), math.ceil(loaded.num_train / 256), job.verbose)
        grouping = lt_gbg.group_classes(job.network, batches, num_groups=num_groups, seed=job.seed,
                                        **grouping_options)
        job.progress.keep("gbg_grouping", json.loads(grouping.to_json(include_similarity=False)))
    imbalance = grouping.within_group_imbalance(loaded.class_counts)
    starved = [c for c, ratio in enumerate(imbalance) if ratio >= 10.0]
    if starved:
        announce(job.verbose, f"GBG: classes {starved} are 10x or more smaller than the largest class of their "
                              "group; a group's loss is the mean over its examples, so they get little of its "
                              "weight (ClassGrouping.within_group_imbalance, docs/methods/gbg.md)")
    network = lt_training.GBGModel.from_model(job.network, grouping, mode=options["gbg_mode"], **model_options)
    train = None
    if sampler == "group_aware_completion":
        import tensorflow as tf

        from keras_longtail.recipes.pipeline import crop_and_flip

        train = lt_data.group_aware_completion(
            loaded.train, grouping, loaded.class_counts, job.batch_size, seed=job.seed,
            shuffle_buffer=loaded.num_train, augment=crop_and_flip if job.augment else None,
        ).prefetch(tf.data.AUTOTUNE)
    job.extra.update(num_groups=num_groups, gbg_mode=options["gbg_mode"], groups=[int(g) for g in grouping.groups],
                     gbg_normalization=network.gbg_settings()["normalization"], gbg_sampler=sampler,
                     gbg_group_loss=network.group_loss, gbg_weighting=network.weighting,
                     gbg_within_group_imbalance=[None if math.isinf(r) else round(r, 2) for r in imbalance])
    if options["gbg_options"]:
        job.extra["gbg_options"] = dict(options["gbg_options"])
    return job.fit(network, label="gbg", train=train)


def _check_async(options):
    from keras_longtail._internal import validation as _validation

    if options["async_threshold"] is not None:
        _validation.check_int("async_threshold", options["async_threshold"], minimum=1)
    rate = options["phase_two_learning_rate"]
    if rate is not None and not rate > 0:
        raise ValueError(f"Expected `phase_two_learning_rate` > 0. Received: phase_two_learning_rate={rate}")
    length = options["phase_two_steps"]
    if length is not None and length != "phase_one":
        if isinstance(length, str):
            raise ValueError(f"Expected `phase_two_steps` to be an integer >= 1, \"phase_one\" or None. "
                             f"Received: phase_two_steps={length!r}")
        _validation.check_int("phase_two_steps", length, minimum=1)
    directory = options["phase_one_dir"]
    if directory is not None and not isinstance(directory, (str, os.PathLike)):
        raise ValueError(f"Expected `phase_one_dir` to be a path or None. Received: phase_one_dir={directory!r}")


PHASE_ONE_RUN = "phase_one_run.json"  # in `phase_one_dir`: the settings phase I was trained with


def _phase_two_steps(length, default, phase_one_steps):
    """Phase II's steps per epoch: ours (`None`: one pass over D, at most half the run's steps), phase I's
    (`"phase_one"`: as many steps as phase I, the paper's Algorithm 1), or `length`."""
    if length is None:
        return default
    if length == "phase_one":
        return phase_one_steps
    return length


def _saved_phase_one_steps(phase_one_dir, phase_one_run):
    """Phase I's steps per epoch when `phase_one_dir` holds a phase I saved by a run with `phase_one_run`'s
    settings, `None` when it holds none; raises when it holds another run's. The steps are recorded, not
    compared: they depend on phase II's size (the memory), not on phase I."""
    from keras_longtail._internal import files as _files

    if phase_one_dir is None or not _files.exists(os.path.join(phase_one_dir, PHASE_ONE_RUN)):
        return None
    saved = json.loads(_files.read_bytes(os.path.join(phase_one_dir, PHASE_ONE_RUN)))
    steps = saved.pop("steps_per_epoch")
    if saved != phase_one_run:
        changed = {key: (saved.get(key), value) for key, value in phase_one_run.items() if saved.get(key) != value}
        raise ValueError(f"Expected `phase_one_dir` to hold phase I of this run. Received: "
                         f"phase_one_dir={phase_one_dir!r}, trained with other settings (saved, this run): {changed}")
    return steps


def _train_async(job, options):
    """`DualPhaseTraining`: phase I on the head classes, phase II on the tail plus the exemplar memory, the CE
    baseline's steps per epoch split between them (phase II at most half).

    `phase_one_dir`: where phase I is kept. A complete phase I found there (`DualPhaseTraining.save_phase_one`)
    is loaded instead of trained (its weights; the memory bank is rebuilt with this run's settings), else phase
    I is trained and saved there, so that runs that differ only in phase II share one phase I.
    `phase_two_steps`: phase II's steps per epoch (see `_phase_two_steps`)."""
    from keras_longtail import training as lt_training

    loaded, epochs, steps, batch_size = job.loaded, job.epochs, job.steps, job.batch_size
    async_options, phase_two_learning_rate = options["async_options"], options["phase_two_learning_rate"]
    # Phase II runs `epochs` epochs over D = X2 ∪ memory (at most half the budget); phase I gets the rest of
    # the CE baseline's `epochs * steps` steps.
    dual = lt_training.DualPhaseTraining(job.network, loaded.class_counts, threshold=options["async_threshold"],
                                         **(async_options or {}))
    if async_options:
        job.extra["async_options"] = dict(async_options)
    job.extra["memory_size"] = dual.memory_size  # exemplars per phase-I class (`"balanced"` resolved)
    one_pass = min(math.ceil(dual.phase_two_size() / batch_size), max(1, steps // 2))
    phase_one_steps = max(1, steps - one_pass)
    phase_one_dir = None if options["phase_one_dir"] is None else os.fspath(options["phase_one_dir"])
    # What phase I is trained with; a saved phase I of another run (data, budget, seed, optimizer) is refused.
    phase_one_run = {"dataset": job.loader, "network": job.network.name,
                     "parameters": int(job.network.count_params()), "num_train": int(loaded.num_train),
                     "class_counts": [int(c) for c in loaded.class_counts], "epochs": epochs,
                     "batch_size": batch_size, "seed": job.seed, "learning_rate": job.learning_rate,
                     "weight_decay": job.weight_decay,
                     "augment": "in model" if job.augment_in_model else job.augment,
                     "async_threshold": options["async_threshold"],
                     **({} if job.momentum_form == "keras" else {"momentum_form": job.momentum_form})}
    trained_steps = _saved_phase_one_steps(phase_one_dir, phase_one_run)
    loaded_phase_one = trained_steps is not None and dual.load_phase_one(phase_one_dir, memory_bank=False)
    if loaded_phase_one:
        phase_one_steps = trained_steps  # phase I's own split (it depends on the memory size it ran with)
    phase_two_steps = _phase_two_steps(options["phase_two_steps"], one_pass, phase_one_steps)
    job.announce(f"dual-phase: {epochs} epochs of phase I, {phase_one_steps} steps each (classes "
                 f"{[int(c) for c in dual.split.phase_one]}, {sum(dual.phase_one_class_counts)} images), then "
                 f"{epochs} of phase II, {phase_two_steps} steps each (the other classes + the exemplar memory, "
                 f"{dual.phase_two_size()} images)")
    if loaded_phase_one:
        job.announce(f"dual-phase phase I: loaded from {phase_one_dir} (trained by an earlier run)")
    else:
        job.announce(f"dual-phase phase I: {epochs} epochs x {phase_one_steps} steps")
        dual.phase_one_model.compile(optimizer=job.optimizer(phase_one_steps), loss=job.loss)
        phase_one = dual.phase_one_data(loaded.train)
        dual.phase_one_model.fit(
            job.pipeline(phase_one, sum(dual.phase_one_class_counts)),
            epochs=epochs, steps_per_epoch=phase_one_steps, shuffle=False, verbose=job.verbose,
            callbacks=job.progress.callbacks("phase_one", epochs))
    job.announce(f"dual-phase: exemplar memory from the phase-I features of {loaded.num_train} training images")
    dual.build_memory_bank(loaded.train)
    if phase_one_dir is not None and not loaded_phase_one:
        dual.save_phase_one(phase_one_dir)
        from keras_longtail._internal import files as _files

        _files.write_bytes(os.path.join(phase_one_dir, PHASE_ONE_RUN),
                           json.dumps({**phase_one_run, "steps_per_epoch": phase_one_steps}).encode())
        job.announce(f"dual-phase phase I: saved to {phase_one_dir}")
    phase_two_model = dual.build_phase_two_model()
    job.announce(f"dual-phase phase II: {epochs} epochs x {phase_two_steps} steps")
    phase_two_model.compile(optimizer=job.optimizer(phase_two_steps, phase_two_learning_rate), loss=job.loss,
                            metrics=[job.shot_metric])
    phase_two_model.fit(
        job.pipeline(dual.phase_two_data(loaded.train), dual.phase_two_size()),
        epochs=epochs, steps_per_epoch=phase_two_steps, shuffle=False, verbose=job.verbose,
        callbacks=job.progress.callbacks("phase_two", epochs))
    job.extra["phase_one_loaded"] = bool(loaded_phase_one)
    job.extra.update(phase_two_learning_rate=job.learning_rate if phase_two_learning_rate is None
                     else phase_two_learning_rate)
    job.extra.update(async_phase_one_classes=[int(c) for c in dual.split.phase_one],
                     async_steps_per_epoch=[phase_one_steps, phase_two_steps])
    return dual.model


def _train_wb(job, options):
    """Weight balancing: stage 1 the CE run (or the saved model `stage_one_model`, which then replaces
    training), stage 2 `retrain_classifier` (class-balanced loss β = 0.9999, decoupled WD 0.01, MaxNorm at
    thresh 0.1 projected per epoch, 10 epochs on features computed once)."""
    import keras

    from keras_longtail import training as lt_training
    from keras_longtail.recipes.evaluation import evaluate

    if options["stage_one_model"] is not None:
        job.announce(f"weight balancing stage 1: the trained model {options['stage_one_model']}")
        network = keras.saving.load_model(options["stage_one_model"], compile=False)
        job.extra["stage_one_model"] = str(options["stage_one_model"])
    else:
        network = job.fit(job.network, label="weight balancing stage 1: CE + WD")
    job.announce("weight balancing: stage-1 test accuracy")
    job.extra["stage_one_accuracy"] = evaluate(network, job.loaded, job.verbose)[0][0]
    job.announce(f"weight balancing stage 2: features of the {job.loaded.num_train} training images (one forward "
                 "pass), then the classifier retrained for 10 epochs (class-balanced loss + WD + MaxNorm)")
    history = lt_training.retrain_classifier(network, job.loaded.train, class_counts=job.loaded.class_counts,
                                             verbose=job.verbose)
    job.extra["stage_two_max_norm"] = round(float(history.history["max_norm"][-1]), 5)
    return network


CE = register_method(Method("ce", "cross-entropy", defaults={}, train=_train_ce))
GALA = register_method(Method(
    "gala", "GALALoss", defaults={"gala_accumulation": "paper"}, train=_train_gala, check=_check_gala,
    results=lambda options: {"gala_accumulation": options["gala_accumulation"]}))
GRADTAIL = register_method(Method(
    "gradtail", "GradTailModel", defaults={"gradtail_max_weight": GRADTAIL_MAX_WEIGHT, "gradtail_layers": "classifier"},
    train=_train_gradtail, check=_check_gradtail,
    results=lambda options: {"gradtail_max_weight": options["gradtail_max_weight"],
                             "gradtail_layers": options["gradtail_layers"]}))
GBG = register_method(Method(
    "gbg", "GBGModel", defaults={"num_groups": 4, "gbg_mode": "backbone", "gbg_options": None},
    train=_train_gbg, check=_check_gbg))
ASYNC = register_method(Method(
    "async", "DualPhaseTraining",
    defaults={"async_threshold": None, "async_options": None, "phase_two_learning_rate": None,
              "phase_two_steps": None, "phase_one_dir": None},
    train=_train_async, check=_check_async,
    exclusive=("phase_two_learning_rate", "phase_two_steps", "phase_one_dir")))
WB = register_method(Method(
    "wb", "weight balancing: CE + WD, then the classifier retrained with class-balanced loss + WD + MaxNorm",
    defaults={"stage_one_model": None}, train=_train_wb, exclusive=("stage_one_model",)))
