"""Lets Keras 3's `model.fit` run under `tf.distribute.MultiWorkerMirroredStrategy` with several workers."""

import keras

from keras_longtail._internal import backend as _backend

# Keras' TensorFlow trainer method that averages one distributed input batch across replicas before `fit` and
# `evaluate` start (docs/multi_worker.md, defect 1). Reading it by name is the one place this module relies on
# a Keras internal; the multi-worker tests fail loudly if Keras renames it without fixing the defect.
_BUILD_HOOK = "_maybe_symbolic_build"
_PREPARED = "_keras_longtail_multi_worker_fit"  # set on a prepared model: a second call changes nothing


def prepare_multi_worker_fit(model):
    """Makes `model.fit` / `model.evaluate` run under MultiWorkerMirroredStrategy with several workers.

    Keras 3.15.1 with TensorFlow 2.21 cannot run `fit` under
    `tf.distribute.MultiWorkerMirroredStrategy` with two or more workers, even for a
    plain model (keras-team/keras#20585), because of two defects in its TensorFlow
    trainer (`docs/multi_worker.md` has the source lines, a reproduction and the
    upstream fix):

    1. Before the first step, Keras averages one distributed input batch over the
       replicas with `strategy.reduce("MEAN", (x, y), axis=None)`, only to read the
       shapes and dtypes it builds the model's state from. `Strategy.reduce` takes
       one value, not a nest; across workers the collective reduce tries to convert
       the `(x, y)` tuple of `PerReplica` values to one tensor: "Attempt to convert a
       value (PerReplica...) ... to a Tensor".
    2. After every step, Keras reduces each log (loss, metrics) across workers with
       `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalar logs
       every step returns ("Invalid reduction dimension 0 for input with 0
       dimensions") and would average a vector log over its own entries.

    For `model` alone, this function (1) builds from this worker's first local
    replica batch, which has the shapes and dtypes Keras needs, and (2) gives the
    logs of `train_step` and `test_step` a leading axis of length 1, so that Keras'
    `axis=0` mean is the mean over the replicas, of each log's own shape: what
    Keras logs under a one-worker `MirroredStrategy`. Training is Keras' own `fit`:
    callbacks, metrics, progress, checkpoints and the model's own `train_step`
    (GradTail, GBG, dual-phase ...). Keras itself is not patched, the model's class
    and its saved files stay the same, and a model whose strategy does not span
    several workers (one device, `MirroredStrategy`) is returned untouched.

    Call it on every worker, after creating the model under `strategy.scope()`
    and before `fit` (before or after `compile`); a second call changes nothing.

    Args:
        model: a `keras.Model` created under the multi-worker strategy's scope.

    Returns:
        `model`, ready for `fit` and `evaluate` under its strategy.

    Example:

    ```python
    strategy = tf.distribute.MultiWorkerMirroredStrategy()   # TF_CONFIG names the workers
    with strategy.scope():
        model = prepare_multi_worker_fit(resnet32(10))
        model.compile(keras.optimizers.SGD(0.1), loss=GALALoss(10),
                      metrics=[ShotAccuracy(counts)])
    model.fit(train.batch(global_batch), epochs=200,
              callbacks=[GALAAccumulator(), BackupAndRestore(f"run/backup/worker{task_id}")])
    ```

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> prepare_multi_worker_fit(model) is model
    True
    >>> model.compile("sgd", "sparse_categorical_crossentropy")
    >>> _ = model.fit(np.ones((4, 4)), np.arange(4) % 3, verbose=0)

    References:
        keras-team/keras#20585, "MultiWorkerMirroredStrategy: model.fit fails with
        'Attempt to convert a value (PerReplica...)'".
    """
    _backend.require_tensorflow_backend("prepare_multi_worker_fit")
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model. Received: model={model!r} of type {type(model).__name__}")
    tf = _backend.import_tensorflow()
    strategy = model.distribute_strategy
    if not _spans_several_workers(strategy, tf) or getattr(model, _PREPARED, False):
        return model  # one worker (Keras' `fit` works as it is), or prepared already
    model_class = type(model)
    if getattr(model_class, _BUILD_HOOK, None) is not None:
        keras_build = getattr(model_class, _BUILD_HOOK)

        def build_from_local_batch(iterator=None, data_batch=None):
            if iterator is not None and data_batch is None:
                data_batch = _first_local_batch(iterator, strategy, tf)
            return keras_build(model, data_batch=data_batch)

        # Attributes of this instance only: the class, other models and Keras itself stay as they are.
        object.__setattr__(model, _BUILD_HOOK, build_from_local_batch)
    for step_name in ("train_step", "test_step"):
        object.__setattr__(model, step_name, _with_replica_axis(getattr(model, step_name), tf))
    object.__setattr__(model, _PREPARED, True)
    return model


def _spans_several_workers(strategy, tf):
    """Whether `strategy` is a MultiWorkerMirroredStrategy with replicas on other workers than this one."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.num_replicas_in_sync > len(strategy.extended.worker_devices))


def _with_replica_axis(step, tf):
    """`step` whose logs have a leading axis of length 1, the axis Keras' multi-worker mean reduces over.

    Keras reduces each log of a step across workers with `strategy.reduce("MEAN", value, axis=0)`
    (`reduce_per_replica`, reduction "auto"), which fails on the scalar logs every step returns ("Invalid
    reduction dimension 0 for input with 0 dimensions") and would average a vector log over its own entries.
    With the leading axis, that reduce returns the mean over replicas, of the step's own shape: the value
    Keras' one-worker `MirroredStrategy` logs.
    """

    def step_with_replica_axis(data):
        return keras.tree.map_structure(lambda value: tf.expand_dims(tf.convert_to_tensor(value), 0), step(data))

    step_with_replica_axis.__name__ = getattr(step, "__name__", "step")
    return step_with_replica_axis


def _first_local_batch(iterator, strategy, tf):
    """The first batch of Keras' epoch iterator, each distributed value replaced by this worker's first replica's."""
    for _, _, batches in iterator:  # how Keras' trainer reads its epoch iterator
        batch = next(batches)
        break
    else:
        raise ValueError("Expected at least one batch of training data. Received: an empty dataset")

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return keras.tree.map_structure(local, batch)
