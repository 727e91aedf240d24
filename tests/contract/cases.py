"""The contract registry: one entry per exported class that takes part in `fit`.

A case builds, inside the current strategy scope, everything `fit` needs for a tiny classifier on 8 features and
4 classes: `build()` returns a dict with
    model      the Keras model (a functional or subclassed model)
    compile    keyword arguments for `model.compile` besides the optimizer
    callbacks  callbacks for `fit` (optional)
    obj        the exported object itself, for the serialization checks (optional: a callback has no config)
    state      function(model) -> list of arrays that must also agree across strategies (optional)
A new export that is not here fails `test_every_export_is_registered`.
"""

import keras
import numpy as np

NUM_FEATURES = 8
NUM_CLASSES = 4
CLASS_COUNTS = [40, 20, 8, 4]


def classifier(output_layer=None):
    inputs = keras.Input((NUM_FEATURES,))
    hidden = keras.layers.Dense(16, activation="relu", name="features")(inputs)
    outputs = keras.layers.Dense(NUM_CLASSES, name="classifier")(hidden)
    if output_layer is not None:
        outputs = output_layer(outputs)
    return keras.Model(inputs, outputs)


def ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _gala_loss():
    from keras_longtail.callbacks import GALAAccumulator
    from keras_longtail.losses import GALALoss

    loss = GALALoss(NUM_CLASSES)
    return {"model": classifier(), "compile": {"loss": loss}, "callbacks": [GALAAccumulator()], "obj": loss,
            "state": lambda model: [loss.theta.numpy(), loss.phi.numpy()]}


def _gala_accumulator():
    case = _gala_loss()
    case.pop("obj")
    return case


def _backup_and_restore():
    import tempfile

    from keras_longtail.callbacks import BackupAndRestore

    case = _gala_accumulator()
    case["callbacks"].append(BackupAndRestore(tempfile.mkdtemp(prefix="keras_longtail_contract_")))
    return case


def _prediction_rebalancing():
    from keras_longtail.layers import PredictionRebalancing

    # Fitted mode (the mode that is batch-independent, so it agrees across replicas), inside a trained model.
    layer = PredictionRebalancing(tau=1.0, from_logits=True)
    layer.adapt(np.random.default_rng(0).normal(size=(32, NUM_CLASSES)).astype("float32"))
    return {"model": classifier(layer),
            "compile": {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=False)}, "obj": layer}


def _shot_accuracy():
    from keras_longtail.metrics import ShotAccuracy

    metric = ShotAccuracy(CLASS_COUNTS)
    return {"model": classifier(), "compile": {"loss": ce(), "metrics": [metric]}, "obj": metric}


def _per_class_accuracy():
    from keras_longtail.metrics import PerClassAccuracy

    metric = PerClassAccuracy(NUM_CLASSES)
    return {"model": classifier(), "compile": {"loss": ce(), "metrics": [metric]}, "obj": metric,
            "state": lambda model: [np.asarray(metric.result())]}


def _gradtail(activation=None, callbacks=()):
    from keras_longtail.training import GradTailModel

    # The classifier only: the analytic Dense path (the paper's "last two layers" take the jacobian path,
    # covered in tests/training).
    model = GradTailModel.from_model(classifier(), gradient_layers=["classifier"], activation=activation)
    return {"model": model, "compile": {"loss": ce()}, "callbacks": list(callbacks), "obj": model,
            "state": lambda model: [v.numpy() for v in model.gradtail_mean_gradient]
            + [model.gradtail_sigma.numpy()]}


def _gradtail_model():
    case = _gradtail()
    case.pop("obj")  # a functional model: its config holds the graph, checked by the .keras round trip
    return case


def _gradtail_sigmoid():
    from keras_longtail.training import GradTailSigmoid

    activation = GradTailSigmoid(max_weight=3.0, sharpness=5.0)
    return dict(_gradtail(activation), obj=activation)


def _gradtail_weight_logger():
    from keras_longtail.training import GradTailWeightLogger

    case = _gradtail(callbacks=[GradTailWeightLogger()])
    case.pop("obj")
    return case


CASES = {
    "callbacks.BackupAndRestore": _backup_and_restore,
    "callbacks.GALAAccumulator": _gala_accumulator,
    "layers.PredictionRebalancing": _prediction_rebalancing,
    "losses.GALALoss": _gala_loss,
    "metrics.PerClassAccuracy": _per_class_accuracy,
    "metrics.ShotAccuracy": _shot_accuracy,
    "training.GradTailModel": _gradtail_model,
    "training.GradTailSigmoid": _gradtail_sigmoid,
    "training.GradTailWeightLogger": _gradtail_weight_logger,
}

# Exported classes that do not run inside `fit`, with the reason (checked elsewhere).
NOT_IN_FIT = {
    "training.GradTailActivation": "abstract base of GradTail activations (GradTailSigmoid is the case)",
    "training.GradTailMixin": "the mixin behind GradTailModel (the case); the subclassed form is tested in "
                              "tests/training/test_gradtail_mixin.py",
    "training.PatchStrategy": "abstract base of patch strategies",
    "training.RandomPatches": "dense outputs only; tested with patches in tests/training/test_patches_and_analysis.py",
}
