"""Asynchronous dual-phase training: head classes first, then every class with a memory bank."""

import json
import math
import os

import keras
import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import layers as _layers
from keras_longtail._internal import files as _files
from keras_longtail._internal import validation as _validation
from keras_longtail.dual_phase._phase_two_model import PhaseTwoModel
from keras_longtail.dual_phase.exemplar_memory_bank import ExemplarMemoryBank
from keras_longtail.dual_phase.expand_classifier import expand_classifier
from keras_longtail.dual_phase.intra_class_margin_loss import IntraClassMarginLoss
from keras_longtail.dual_phase.memory_retentive_loss import MemoryRetentiveLoss
from keras_longtail.dual_phase.split_by_frequency import split_by_frequency
from keras_longtail.layers.cosine_classifier import CosineClassifier

PHASE_TWO_DATA = ("memory", "all")
PHASE_TWO_BATCH_NORM = ("inference", "train")
PHASE_ONE_WEIGHTS = "phase_one.weights.h5"
PHASE_ONE_STATE = "phase_one.json"


class DualPhaseTraining:
    """Prepares the models and data of the two phases of asynchronous modeling; you call `fit`.

    Phase I (paper §3.2.1, Eq. 1) trains the backbone with a classifier
    truncated to the C1 data-rich classes of `split_by_frequency` on their data
    only. Between the phases, `build_memory_bank` keeps `memory_size` exemplars
    per phase-I class (Eq. 2-5). Phase II (§3.2.2) expands the classifier to all
    C classes (phase-I columns kept) and trains on D = X2 ∪ M, the phase-II
    classes plus the exemplars, with the loss of Eq. 9:

    L = 1/|B| Σ_{x ∈ B} (L_cls(x) + L_intra(x)) + λ·L_dis^G

    L_cls is the loss you compile (cross-entropy), L_intra the
    `IntraClassMarginLoss` of a cosine classifier and L_dis^G the
    `MemoryRetentiveLoss` between the features of a frozen copy of the phase-I
    model (inference mode) and of the model being trained, λ = sqrt(C / C1)
    by default (§5). (Appendix A writes λ = sqrt(C1 / (C − C1)) instead; the
    Places-LT optimum reported in §5, 2.03, is that value.)

    Usage (every `fit` is an ordinary Keras `fit`, so optimizers, schedules,
    callbacks and `tf.distribute` work as usual; build inside
    `strategy.scope()` when distributing):

    ```python
    dual = DualPhaseTraining(network, class_counts)      # network: C-class model
    head = dual.phase_one_model                          # C1 outputs, phase-I labels
    head.compile(optimizer_1, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    head.fit(pipeline(dual.phase_one_data(train)), epochs=epochs_1, ...)
    dual.build_memory_bank(train)                        # un-augmented, fixed-order data
    model = dual.build_phase_two_model()                 # expanded; adds L_intra + λ·L_dis
    model.compile(optimizer_2, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(pipeline(dual.phase_two_data(train)), epochs=epochs_2, ...)
    dual.model.evaluate(...)                             # the plain C-class network
    ```

    Restarts. Each `fit` resumes after a kill with
    `keras_longtail.callbacks.BackupAndRestore` (one directory per phase);
    what lies between the phases, the phase-I weights (the frozen features of
    L_dis) and the memory bank, is saved with `save_phase_one` and restored
    with `load_phase_one`, which also tells a restarted script whether phase
    I is complete:

    ```python
    dual = DualPhaseTraining(network, class_counts)
    if not dual.load_phase_one("run/phase_one"):         # False until phase I has completed once
        head = dual.phase_one_model
        head.compile(optimizer_1, loss)
        head.fit(..., callbacks=[BackupAndRestore("run/backup_one")])
        dual.build_memory_bank(train)
        dual.save_phase_one("run/phase_one")
    model = dual.build_phase_two_model()                 # the same model as before the kill
    model.compile(optimizer_2, loss)
    model.fit(..., callbacks=[BackupAndRestore("run/backup_two")])
    ```

    A kill before phase II's first checkpoint restarts phase II from the
    phase-I weights, with a new random initialization of the phase-II
    classes' columns (`keras.utils.set_random_seed` just before
    `build_phase_two_model` makes it the same one).

    `phase_one_data` / `phase_two_data` take and return unbatched `tf.data`
    datasets of `(features, label)`, so augmentation, batching and samplers
    (e.g. `progressively_balanced_sampler(dual.phase_one_data(train),
    dual.phase_one_class_counts, ...)`, which the paper suggests for phase I)
    stay in your pipeline. The data helpers are TensorFlow-only (tf.data);
    the models and losses are `keras.ops` (tested on TensorFlow).

    With `cosine_classifier=True` (default) the classifier becomes a
    `CosineClassifier(scale)` in both phases; with `False` the network's own
    `Dense` classifier is truncated (its phase-I columns kept) and expanded,
    and `margin` must be `None` (L_intra needs cosine scores).

    Defaults (a documented deviation from the paper's formulas). The
    retentive term follows the paper's stated intent — μ_i is "the difference
    between z_i and its closest neighbour in G_new", on the normalized feature
    map z̄ the cosine classifier scores, balanced against the per-example mean
    of L_cls + L_intra by λ — with unit-norm features, a sharp T = 0.01 and a
    batch mean, instead of Eq. 6-8 as printed (T = 1, raw features, a sum over
    the batch: its scale grows with the feature norms and the batch size, and
    at T = 1 the nearly uniform attention rewards collapsing the new features
    onto the old mean, see `MemoryRetentiveLoss`). The runs behind this choice
    are in the docs' dual-phase page (`docs/methods/dual-phase.md`) and
    `benchmarks/README.md`. `retentive_temperature=1.0,
    retentive_normalize=False, retentive_reduction="sum"` is the paper as
    printed.

    The memory size is a rule, not a number: the paper fixes m = 10 exemplars
    per class (best of 2-18 on Places-LT), where the phase-II classes have
    fewer than 20 images each, so the memory is about as large per class as
    the new classes. Phase II then sees head and tail in about equal
    measure. A fixed 10 does not carry over to data whose phase-II classes
    are larger: the memory becomes a small fraction of phase II and the
    head classes are forgotten. `memory_size="balanced"` keeps the paper's
    proportion (and its 10 on CIFAR-100-LT); `memory_size=10` is the paper's
    number. The measurements behind the choice are in the docs' dual-phase
    page.

    Args:
        network: functional C-class `keras.Model` ending in the classifier
            layer, with a feature layer (`models.resnet32`, `models.mlp`).
        class_counts: per-class training counts (length C).
        threshold: C1, the number of phase-I classes. Defaults to `None`
            (`split_by_frequency`'s Many + Medium rule).
        memory_size: exemplars per phase-I class, an int >= 1 or `"balanced"`:
            the mean training count of the phase-II classes, rounded half up, so
            that D = X2 ∪ M is about class-balanced (`memory_size` then
            holds the resolved int). Defaults to `"balanced"`, which is the
            paper's 10 on CIFAR-100-LT IF 100 (its Few classes have 5-19
            images) and 67 on CIFAR-10-LT IF 100 (phase II: 83 and 50); see
            the memory-size paragraph above.
        similarity: similarity of the memory bank and of L_dis, `"cosine"` or
            `"dot"`. Defaults to `"cosine"`.
        retentive_weight: λ >= 0. Defaults to `None` (sqrt(C / C1)).
        retentive_temperature: temperature T of L_dis's matching. Defaults to
            `0.01` (the paper's T = 1 is `1.0`; see "Defaults" below).
        retentive_normalize: compute L_dis on L2-normalized features.
            Defaults to `True` (the paper: `False`).
        cosine_classifier: see above. Defaults to `True`.
        scale: scale s of the cosine classifier. Defaults to `16.0`.
        margin: m of L_intra, or `None` to leave L_intra out. Defaults to `0.5`.
        num_negatives: K of L_intra. Defaults to `2`.
        retentive_reduction: reduction of L_dis over the batch, `"sum"` (Eq. 8)
            or `"sum_over_batch_size"`. Defaults to `"sum_over_batch_size"`.
        phase_two_data: `"memory"` (D = X2 ∪ M, the paper) or `"all"` (every
            training example). Defaults to `"memory"`.
        phase_two_batch_norm: `"train"` (the network's batch normalization
            layers keep updating on the phase-II batches, as in an ordinary
            `fit`) or `"inference"` (they are frozen in phase II: they
            normalize with the phase-I moving statistics in training as at
            test time, and their scale and offset stop training). Defaults to
            `"train"`. D holds a few hundred images, mostly of the tail
            classes, so its batch statistics differ from the test set's;
            which setting trains better depends on the phase-II learning rate
            (measured in `docs/methods/dual-phase.md`). The paper does not
            say.
        feature_layer: name of the feature layer. Defaults to `"features"`.
        classifier_layer: name of the classifier layer. Defaults to `"classifier"`.

    Attributes:
        split: the `FrequencySplit`.
        phase_one_model: the truncated model (C1 outputs).
        memory_bank: the `ExemplarMemoryBank` after `build_memory_bank`.
        model: the expanded C-class network after `build_phase_two_model`
            (labels in the data set's order; save and evaluate this one).

    Example:

    >>> from keras_longtail import models
    >>> dual = DualPhaseTraining(models.mlp(4, (3,)), [50, 30, 25, 5])
    >>> dual.split.phase_one, dual.phase_one_model.output_shape, round(dual.retentive_weight, 4)
    ([0, 1, 2], (None, 3), 1.1547)

    References:
        - "Asynchronous Modeling: A Dual-Phase Perspective for Long-Tailed
          Recognition", ICLR 2021 submission (OpenReview, anonymous), §3.2,
          Algorithm 1.
    """

    def __init__(self, network, class_counts, *, threshold=None, memory_size="balanced", similarity="cosine",
                 retentive_weight=None, retentive_temperature=0.01, retentive_normalize=True,
                 cosine_classifier=True, scale=16.0, margin=0.5, num_negatives=2,
                 retentive_reduction="sum_over_batch_size", phase_two_data="memory", phase_two_batch_norm="train",
                 feature_layer="features", classifier_layer="classifier"):
        if not isinstance(network, keras.Model):
            raise TypeError(f"Expected `network` to be a keras.Model. Received: network={network!r}")
        self.class_counts = _validation.check_class_counts("class_counts", class_counts)
        self.split = split_by_frequency(self.class_counts, threshold)
        self.num_classes = len(self.class_counts)
        num_phase_one = len(self.split.phase_one)
        if retentive_weight is None:
            retentive_weight = math.sqrt(self.num_classes / num_phase_one)
        self.retentive_weight = _validation.check_float("retentive_weight", retentive_weight, minimum=0.0)
        if isinstance(memory_size, str):
            _validation.check_choice("memory_size", memory_size, ("balanced",))
            # as many exemplars per phase-I class as a phase-II class has examples, on average (at least 1)
            tail_counts = [self.class_counts[k] for k in self.split.phase_two]
            memory_size = max(1, math.floor(float(np.mean(tail_counts)) + 0.5))
        self.memory_size = _validation.check_int("memory_size", memory_size, minimum=1)
        smallest = min(self.phase_one_class_counts)
        if self.memory_size > smallest:  # here, not after phase I: the bank is filled from every phase-I class
            raise ValueError(f"Expected `memory_size` <= {smallest}, the training count of the smallest phase-I "
                             f"class ({self.split.phase_one[self.phase_one_class_counts.index(smallest)]}). "
                             f"Received: memory_size={self.memory_size}")
        self.similarity = similarity
        self.cosine_classifier = bool(cosine_classifier)
        self.scale = _validation.check_float("scale", scale, minimum=0.0, min_inclusive=False)
        if margin is not None and not self.cosine_classifier:
            raise ValueError("The intra-class margin loss needs cosine scores: pass margin=None with "
                             f"cosine_classifier=False. Received: margin={margin}")
        self.margin = margin
        self.num_negatives = num_negatives
        self.intra_loss = (None if margin is None else
                           IntraClassMarginLoss(margin=margin, scale=self.scale, num_negatives=num_negatives))
        self.retentive_loss = MemoryRetentiveLoss(similarity=similarity, temperature=retentive_temperature,
                                                   normalize=retentive_normalize, reduction=retentive_reduction)
        self.phase_two_data_mode = _validation.check_choice("phase_two_data", phase_two_data, PHASE_TWO_DATA)
        self.phase_two_batch_norm = _validation.check_choice("phase_two_batch_norm", phase_two_batch_norm,
                                                             PHASE_TWO_BATCH_NORM)
        self.feature_layer = feature_layer
        self.classifier_layer = classifier_layer
        for name in (feature_layer, classifier_layer):
            try:
                network.get_layer(name)
            except ValueError as error:
                raise ValueError(f"Expected `network` to have a layer named {name!r} (see `feature_layer`, "
                                 f"`classifier_layer`). Received layers: "
                                 f"{[layer.name for layer in network.layers]}") from error
        self.network = network
        self.phase_one_model = self._truncate(network, num_phase_one)
        self.memory_bank = None
        self.model = None

    @property
    def phase_one_class_counts(self):
        """Training counts of the phase-I classes, in phase-I label order (for the samplers)."""
        return [self.class_counts[k] for k in self.split.phase_one]

    def _truncate(self, network, units):
        classifier = network.get_layer(self.classifier_layer)
        if len(network.outputs) != 1 or network.outputs[0] is not classifier.output:
            raise ValueError(f"Expected the layer {self.classifier_layer!r} to produce the network's only "
                             "output.")
        if self.cosine_classifier:
            head = CosineClassifier(units, scale=self.scale, name=self.classifier_layer)
            outputs = head(classifier.input)
        else:
            config = classifier.get_config()
            config["units"] = units
            head = type(classifier).from_config(config)
            outputs = head(classifier.input)
            head.set_weights([w[..., self.split.phase_one] for w in classifier.get_weights()])  # W_c^1
        return keras.Model(network.input, outputs, name=f"{network.name}_phase_one")

    def phase_one_data(self, dataset):
        """The phase-I classes of `dataset` (unbatched `(x, label)`), relabelled to phase-I labels."""
        tf = self._tensorflow("DualPhaseTraining.phase_one_data")
        table = np.full(self.num_classes, -1, dtype=np.int64)
        for k, label in self.split.phase_one_labels.items():
            table[k] = label
        table = tf.constant(table)

        def relabel(x, y):
            return x, tf.cast(tf.gather(table, tf.cast(y, tf.int64)), y.dtype)

        return dataset.filter(lambda x, y: tf.gather(table, tf.cast(y, tf.int64)) >= 0).map(relabel)

    def build_memory_bank(self, dataset, batch_size=256):
        """Fits the memory bank on phase-I features of `dataset` (unbatched, un-augmented, fixed order).

        Row i of the bank is element i of `dataset`; pass the same dataset to
        `phase_two_data`. Returns the `ExemplarMemoryBank`.
        """
        self._tensorflow("DualPhaseTraining.build_memory_bank")
        extractor = keras.Model(self.phase_one_model.input,
                                self.phase_one_model.get_layer(self.feature_layer).output)
        features = extractor.predict(dataset.map(lambda x, y: x).batch(batch_size), verbose=0)
        labels = np.concatenate([np.asarray(y) for y in dataset.map(lambda x, y: y).batch(4096)])
        bank = ExemplarMemoryBank(self.memory_size, similarity=self.similarity)
        self.memory_bank = bank.fit(features.reshape(len(labels), -1), labels, classes=self.split.phase_one)
        return self.memory_bank

    def phase_two_data(self, dataset):
        """D = X2 ∪ M (the phase-II classes and the exemplars) of `dataset`, original labels.

        With `phase_two_data="all"`, `dataset` itself.
        """
        tf = self._tensorflow("DualPhaseTraining.phase_two_data")
        if self.phase_two_data_mode == "all":
            return dataset
        if self.memory_bank is None:
            raise ValueError("Call `build_memory_bank(dataset)` before `phase_two_data` (D = X2 ∪ M).")
        phase_two = tf.constant(self.split.phase_two, tf.int64)
        exemplars = tf.constant(self.memory_bank.exemplar_indices(), tf.int64)

        def keep(index, element):
            label = tf.cast(element[1], tf.int64)
            return tf.logical_or(tf.reduce_any(tf.equal(label, phase_two)),
                                 tf.reduce_any(tf.equal(index, exemplars)))

        return dataset.enumerate().filter(keep).map(lambda index, element: element)

    def phase_two_size(self):
        """Number of examples in the phase-II data."""
        phase_two = sum(self.class_counts[k] for k in self.split.phase_two)
        if self.phase_two_data_mode == "all":
            return sum(self.class_counts)
        return phase_two + self.memory_size * len(self.split.phase_one)

    def save_phase_one(self, directory):
        """Writes the end of phase I to `directory`: the phase-I weights and the memory bank.

        Call it after `build_memory_bank`, before `build_phase_two_model`. With
        `load_phase_one(directory)` a restarted process skips phase I and
        rebuilds the same phase-II model (the frozen phase-I features are
        these weights). Writes `phase_one.weights.h5` and then, atomically,
        `phase_one.json` (the split, the memory bank with its features, and
        the marker that phase I is complete). Keep `directory` apart from the
        `BackupAndRestore` directories of the two `fit` calls (those are
        deleted when their training completes).
        """
        if self.memory_bank is None and self.phase_two_data_mode == "memory":
            raise ValueError("Call `build_memory_bank(dataset)` before `save_phase_one` (phase I ends with the "
                             "memory bank).")
        if self.model is not None:
            raise ValueError("Call `save_phase_one` before `build_phase_two_model`: phase II trains the layers "
                             "phase I shares with it.")
        _files.makedirs(directory)
        temporary = os.path.join(directory, "phase_one.tmp.weights.h5")
        self.phase_one_model.save_weights(temporary)
        _files.replace(temporary, os.path.join(directory, PHASE_ONE_WEIGHTS))
        state = {"phase_one": list(self.split.phase_one), "num_classes": self.num_classes,
                 "memory_bank": None if self.memory_bank is None else
                 json.loads(self.memory_bank.to_json(include_features=True))}
        # Written last: its presence means that phase I is complete.
        _files.write_bytes(os.path.join(directory, PHASE_ONE_STATE), json.dumps(state).encode())

    def load_phase_one(self, directory, memory_bank=True):
        """Restores what `save_phase_one(directory)` wrote; `True` if it did (phase I is complete), else `False`.

        Loads the phase-I weights into `phase_one_model` (and so into the
        layers it shares with `network`) and the memory bank, so that
        `build_phase_two_model()` builds the phase-II model and the frozen
        phase-I features of the interrupted run. Call it on a fresh
        `DualPhaseTraining` of the same network architecture and arguments,
        before `build_phase_two_model`. Returns `False`, changing nothing,
        when `directory` holds no complete phase I.

        With `memory_bank=False` only the phase-I weights are restored and the
        saved memory bank is ignored: call `build_memory_bank` next. This is
        how runs that differ only in phase II (its memory size, learning rate,
        length) share one phase I.
        """
        path = os.path.join(directory, PHASE_ONE_STATE)
        if not _files.exists(path):
            return False
        if self.model is not None:
            raise ValueError("Call `load_phase_one` before `build_phase_two_model`. "
                             f"Received: directory={directory!r} after the phase-II model was built")
        state = json.loads(_files.read_bytes(path))
        if state["phase_one"] != list(self.split.phase_one) or state["num_classes"] != self.num_classes:
            raise ValueError(
                f"Expected `directory` to hold phase I of this split ({self.num_classes} classes, phase-I "
                f"classes {list(self.split.phase_one)}). Received: directory={directory!r} with "
                f"{state['num_classes']} classes, phase-I classes {state['phase_one']}")
        bank = state["memory_bank"] if memory_bank else None
        if bank is not None and bank["config"] != {"memory_size": self.memory_size, "similarity": self.similarity}:
            raise ValueError(f"Expected `directory` to hold a memory bank with memory_size={self.memory_size} and "
                             f"similarity={self.similarity!r}. Received: directory={directory!r} with "
                             f"{bank['config']}")
        self.phase_one_model.load_weights(os.path.join(directory, PHASE_ONE_WEIGHTS))
        if memory_bank:
            self.memory_bank = None if bank is None else ExemplarMemoryBank.from_json(json.dumps(bank))
        return True

    def build_phase_two_model(self):
        """Expands the classifier, freezes a copy of the phase-I model and returns the model to `fit`.

        The returned model outputs the C-class logits of `self.model` (which
        shares its layers) and adds L_intra and λ·L_dis to the compiled loss
        while training.
        """
        # Rebuilt from the layer graph only: `clone_model` would also revive how phase I was compiled (its
        # optimizer and schedule), which need not be serializable and plays no part in phase II.
        old = type(self.phase_one_model).from_config(self.phase_one_model.get_config())
        old.set_weights(self.phase_one_model.get_weights())
        old_features = keras.Model(old.input, old.get_layer(self.feature_layer).output,
                                   name="phase_one_features")
        old_features.trainable = False
        self.model = expand_classifier(self.phase_one_model, self.num_classes, self.classifier_layer,
                                       class_ids=self.split.phase_one)
        if self.phase_two_batch_norm == "inference":
            for layer in _layers.flat_layers(self.model):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False  # Keras runs a non-trainable batch norm in inference mode
        phase_two = PhaseTwoModel(self.model, old_features, self.retentive_loss, self.retentive_weight,
                                  intra_loss=self.intra_loss, feature_layer=self.feature_layer,
                                  name=f"{self.network.name}_phase_two")
        phase_two.build(self.model.input_shape)  # built: `BackupAndRestore` restores it before the first step
        return phase_two

    @staticmethod
    def _tensorflow(what):
        _backend.require_tensorflow_backend(what)
        return _backend.import_tensorflow()

