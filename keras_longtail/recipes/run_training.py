"""`run_training`: one long-tailed classification experiment, the job behind `keras-longtail train`."""

import math

from keras_longtail.recipes.defaults import DATASETS
from keras_longtail.recipes.defaults import DIGITS_LEARNING_RATE
from keras_longtail.recipes.defaults import RESNET_BATCH_NORM_MOMENTUM
from keras_longtail.recipes.defaults import SGD_LEARNING_RATE
from keras_longtail.recipes.defaults import SGD_MOMENTUM
from keras_longtail.recipes.defaults import WEIGHT_DECAY
from keras_longtail.recipes.evaluation import evaluate
from keras_longtail.recipes.evaluation import num_test_examples
from keras_longtail.recipes.evaluation import shot_accuracy
from keras_longtail.recipes.pipeline import ldam_schedule
from keras_longtail.recipes.pipeline import training_pipeline
from keras_longtail.recipes.progress import Progress
from keras_longtail.recipes.progress import announce
from keras_longtail.recipes.registry import METHODS
from keras_longtail.recipes.registry import get_method
from keras_longtail.recipes.registry import method_options as registered_options


class Job:
    """What every method's recipe shares within one `run_training` call.

    Attributes: `loaded` (the `load_*_lt` data), `network` (the built, untrained network),
    `num_classes`, `epochs`, `steps` (per epoch), `batch_size`, `learning_rate`, `weight_decay`,
    `augment` (in the pipeline), `augment_in_model` (in the network instead), `momentum_form` (SGD's:
    `"keras"` or `"pytorch"`), `seed`, `verbose`,
    `loss` (sparse cross-entropy from logits), `shot_metric` (`ShotAccuracy`), `progress`
    (checkpoints and clock) and `extra` (the method's results, added to the returned dict).
    """

    def __init__(self, loaded, network, loader, epochs, steps, batch_size, learning_rate, weight_decay, augment,
                 seed, verbose, progress, loss, shot_metric, augment_in_model=False, momentum_form="keras"):
        self.loaded, self.network, self.loader = loaded, network, loader
        self.epochs, self.steps, self.batch_size = epochs, steps, batch_size
        self.learning_rate, self.weight_decay, self.augment = learning_rate, weight_decay, augment
        self.augment_in_model, self.momentum_form = augment_in_model, momentum_form
        self.seed, self.verbose, self.progress = seed, verbose, progress
        self.loss, self.shot_metric = loss, shot_metric
        self.extra = {}

    @property
    def num_classes(self):
        return self.loaded.num_classes

    def announce(self, message):
        """Prints `message` as the start of a phase (unless `verbose` is 0)."""
        announce(self.verbose, message)

    def optimizer(self, steps_per_epoch, peak=None, epochs=None):
        """The data set's optimizer for `epochs` (default: the run's) of `steps_per_epoch` steps, peaking at `peak`
        (default: the run's learning rate): Adam on a cosine decay for digits-LT, else SGD (momentum 0.9) on the
        LDAM-DRW schedule, `keras.optimizers.SGD` or, with `momentum_form="pytorch"`, `PyTorchSGD`."""
        import keras

        peak = self.learning_rate if peak is None else peak
        epochs = self.epochs if epochs is None else epochs
        if self.loader == "digits":
            schedule = keras.optimizers.schedules.CosineDecay(peak, epochs * steps_per_epoch)
            return keras.optimizers.Adam(schedule, weight_decay=self.weight_decay or None)
        from keras_longtail.optimizers import PyTorchSGD

        sgd = PyTorchSGD if self.momentum_form == "pytorch" else keras.optimizers.SGD
        return sgd(ldam_schedule(peak, epochs, steps_per_epoch), momentum=SGD_MOMENTUM,
                   weight_decay=self.weight_decay or None)

    def pipeline(self, dataset, num_examples):
        """`training_pipeline` of `dataset` with the run's batch size, augmentation and seed."""
        return training_pipeline(dataset, num_examples, self.batch_size, self.augment, self.seed)

    def fit(self, network, label, loss=None, callbacks=(), train=None):
        """Compiles `network` (the run's optimizer, `loss` or cross-entropy, `ShotAccuracy`) and fits it for the
        run's epochs on `train` (default: the shuffled, augmented training set); returns `network`."""
        network.compile(optimizer=self.optimizer(self.steps), loss=self.loss if loss is None else loss,
                        metrics=[self.shot_metric])
        if train is None:
            train = self.pipeline(self.loaded.train, self.loaded.num_train)
        self.announce(f"training ({label}): {self.epochs} epochs x {self.steps} steps")
        network.fit(train, epochs=self.epochs, steps_per_epoch=self.steps, shuffle=False, verbose=self.verbose,
                    callbacks=list(callbacks) + self.progress.callbacks("fit", self.epochs))
        return network


def run_training(dataset="digits-lt", imbalance_factor=None, method="ce", model="auto", epochs=None,
                 batch_size=None, learning_rate=None, weight_decay=None, steps_per_epoch=None,
                 data_dir=None, seed=0, verbose=2, save_model=None, rebalance_tau=None, batch_norm_momentum=None,
                 state_dir=None, augment_in_model=False, momentum_form="keras", **method_options):
    """Trains one model as `keras-longtail train` does and returns the results dict.

    `method` names a registered method (`keras_longtail.recipes.METHODS`: ce, gala,
    gradtail, gbg, async, wb); the keyword arguments a method owns (`**method_options`)
    default to its registered defaults (`keras_longtail.recipes.get_method(name).defaults`)
    and are ignored by the other methods, except `phase_two_learning_rate` (async) and
    `stage_one_model` (wb), which are errors with any other method.

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
    `batch_norm_momentum` is passed to `resnet32` (default: its 0.9). The image data sets are
    augmented by a random crop after 4-pixel zero padding and a horizontal flip, in the
    `tf.data` pipeline (`recipes.crop_and_flip`), or with `augment_in_model=True` inside the
    network (`resnet32(augmentation=[PaddedRandomCrop(4), RandomFlip("horizontal")])`), so
    that it runs in the compiled training step on the accelerator. With
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

    `momentum_form` chooses the SGD of the image data sets' fits (every method's, both
    dual-phase phases, GBG's inner optimizer, weight balancing's stage 1): `"keras"`
    (default, `keras.optimizers.SGD`: the learning rate inside the velocity) or
    `"pytorch"` (`keras_longtail.optimizers.PyTorchSGD`: the papers' code's update, which
    differs from Keras' after each learning-rate drop). Digits-LT trains with Adam.

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
        `per_class_accuracy` (%), `shot_classes`, `train_seconds` and `epoch_logs`
        (per `fit` phase, each epoch's training logs: loss, metrics and the method's
        own, e.g. GBG's `gbg_alpha_max`), `prior_undone_accuracy` and
        `prior_undone_per_class_accuracy` (the test logits minus the log of the
        training class frequencies, post-hoc logit adjustment at tau = 1, Menon et
        al. 2021: what a balanced decision prior gives the same network); with
        `rebalance_tau`, also `rebalanced_accuracy` and `rebalanced_per_class_accuracy`.

    Example:

    ```python
    results = run_training("digits-lt", epochs=5, verbose=0)
    results["accuracy"]["overall"]
    ```
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
    recipe = get_method(method)
    known = registered_options()
    unknown = sorted(set(method_options) - set(known))
    if unknown:
        raise TypeError(f"Expected keyword arguments of run_training or of a registered method ({sorted(known)}). "
                        f"Received: {', '.join(f'{name}={method_options[name]!r}' for name in unknown)}")
    for other in METHODS.values():
        for name in other.exclusive:
            if other is not recipe and method_options.get(name) is not None:
                raise ValueError(f"`{name}` is for method={other.name!r}. Received: method={method!r}")
    options = {**recipe.defaults, **{k: v for k, v in method_options.items() if k in recipe.defaults}}
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
    if recipe.check is not None:
        recipe.check(options)
    if rebalance_tau is not None and not rebalance_tau >= 0:
        raise ValueError(f"Expected `rebalance_tau` >= 0. Received: rebalance_tau={rebalance_tau}")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError(f"Expected `steps_per_epoch` >= 1. Received: steps_per_epoch={steps_per_epoch}")
    if not isinstance(augment_in_model, bool):
        raise TypeError(f"Expected `augment_in_model` to be a bool. Received: augment_in_model={augment_in_model!r}")
    _validation.check_choice("momentum_form", momentum_form, {"keras", "pytorch"})
    if momentum_form != "keras" and loader == "digits":
        raise ValueError("Expected `momentum_form='keras'` with digits-lt (it trains with Adam, not SGD). "
                         f"Received: momentum_form={momentum_form!r} with dataset={dataset!r}")
    if augment_in_model and (loader == "digits" or model_name == "mlp"):
        raise ValueError("Expected `augment_in_model=True` only with the resnet32 model on an augmented (image) data "
                         f"set. Received: augment_in_model=True with dataset={dataset!r}, model={model_name!r}")
    keras.utils.set_random_seed(seed)

    announce(verbose, f"loading {dataset} (imbalance factor {imbalance_factor:g})")
    if loader == "digits":
        loaded = lt_data.load_digits_lt(imbalance_factor)
    elif loader == "fashion_mnist":
        loaded = lt_data.load_fashion_mnist_lt(imbalance_factor, data_dir=data_dir)
    else:
        loaded = lt_data.load_cifar_lt(loader, imbalance_factor, data_dir=data_dir)
    num_classes = loaded.num_classes
    image_shape = tuple(loaded.train.element_spec[0].shape)
    shots = lt_data.shot_splits(loaded.class_counts)
    announce(verbose, f"{loaded.num_train} training images in {num_classes} classes ({len(shots.many)} Many, "
                      f"{len(shots.medium)} Medium, {len(shots.few)} Few), "
                      f"{num_test_examples(loaded) or 'the'} test images")

    if model_name == "mlp" and batch_norm_momentum is not None:
        raise ValueError("`batch_norm_momentum` is for the resnet32 model (the MLP has no batch norm). "
                         f"Received: batch_norm_momentum={batch_norm_momentum} with model='mlp'")
    if model_name == "mlp":
        network = lt_models.mlp(num_classes, image_shape, hidden_units=(64,))
    else:
        batch_norm_momentum = RESNET_BATCH_NORM_MOMENTUM if batch_norm_momentum is None else batch_norm_momentum
        augmentation = []
        if augment_in_model:
            from keras_longtail import layers as lt_layers

            augmentation = [lt_layers.PaddedRandomCrop(4, name="augment_crop"),
                            keras.layers.RandomFlip("horizontal", name="augment_flip")]
        network = lt_models.resnet32(num_classes, input_shape=image_shape, batch_norm_momentum=batch_norm_momentum,
                                     augmentation=augmentation)

    steps = math.ceil(loaded.num_train / batch_size)
    if steps_per_epoch is not None:
        steps = min(steps, steps_per_epoch)
    if loader == "digits":
        learning_rate = DIGITS_LEARNING_RATE if learning_rate is None else learning_rate
        weight_decay = 0.0 if weight_decay is None else weight_decay
        augment = False
    else:
        learning_rate = SGD_LEARNING_RATE if learning_rate is None else learning_rate
        weight_decay = WEIGHT_DECAY if weight_decay is None else weight_decay
        augment = not augment_in_model  # in the pipeline, or else in the network

    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    shot_metric = lt_metrics.ShotAccuracy(loaded.class_counts)
    progress = Progress(state_dir)  # also the clock of train_seconds and train_cpu_seconds
    job = Job(loaded, network, loader, epochs, steps, batch_size, learning_rate, weight_decay, augment, seed,
              verbose, progress, ce, shot_metric, augment_in_model=augment_in_model, momentum_form=momentum_form)
    network = recipe.train(job, options)
    extra = job.extra
    if state_dir is not None:
        extra.update(resumed_from=progress.resumed_from)
    extra["epoch_logs"] = progress.epoch_logs
    train_seconds, train_cpu_seconds = progress.totals()
    if save_model:
        network.save(save_model)

    announce(verbose, f"test accuracy on {num_test_examples(loaded) or 'the'} test images")
    (accuracy, per_class), labels, logits = evaluate(network, loaded, verbose)
    # The training prior undone (logits - log of the class frequencies; Menon et al. 2021, post-hoc logit
    # adjustment at tau = 1): every method's result carries CE's own post-hoc correction beside its own.
    log_prior = keras.ops.log(keras.ops.convert_to_tensor(
        [n / sum(loaded.class_counts) for n in loaded.class_counts], dtype=logits.dtype))
    extra["prior_undone_accuracy"], extra["prior_undone_per_class_accuracy"] = shot_accuracy(
        loaded.class_counts, labels, logits - log_prior)
    if rebalance_tau is not None:
        from keras_longtail import layers as lt_layers

        rebalanced = lt_layers.PredictionRebalancing(tau=rebalance_tau, from_logits=True)(logits)
        extra["rebalance_tau"] = rebalance_tau
        extra["rebalanced_accuracy"], extra["rebalanced_per_class_accuracy"] = shot_accuracy(
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
        "momentum_form": momentum_form,
        "seed": seed,
        "class_counts": loaded.class_counts,
        "shot_classes": {k: len(v) for k, v in splits._asdict().items()},
        "accuracy": accuracy,
        "per_class_accuracy": per_class,
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        **(recipe.results(options) if recipe.results is not None else {}),
        **({} if model_name == "mlp" else {"batch_norm_momentum": batch_norm_momentum,
                                           "shortcut": "zero_pad"}),
        **({"augment_in_model": True} if augment_in_model else {}),
        **extra,
    }
