"""A small training job run by each worker of the multi-worker test (and once, on one device, as the reference).

The steps are the models' own `train_step`s run by `strategy.run` over the distributed data set, not `fit`:
Keras 3.15's `fit` cannot start under MultiWorkerMirroredStrategy with more than one worker (its symbolic build
calls `strategy.reduce` on the whole `(x, y)` batch, a nest the collective reduce rejects:
"Attempt to convert a value (PerReplica...)"). One-process strategies go through `fit` in the other tests.

    python multi_worker_job.py OUTPUT.npz          # TF_CONFIG set: one worker of MultiWorkerMirroredStrategy
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

NUM_CLASSES = 4
GLOBAL_BATCH = 16
STEPS = 6


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 8)).astype("float32")
    y = (np.arange(GLOBAL_BATCH * STEPS) % NUM_CLASSES).astype("int32")
    return x, y


def methods():
    """name -> function() returning (model, loss, callbacks); called inside the strategy scope."""
    from keras_longtail import callbacks, constraints, gbg, losses, training

    def network():
        inputs = keras.Input((8,))
        hidden = keras.layers.Dense(16, activation="relu", name="features")(inputs)
        return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, name="classifier")(hidden))

    def ce():
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def gala():
        return network(), losses.GALALoss(NUM_CLASSES), [callbacks.GALAAccumulator()]

    def gradtail():
        return training.GradTailModel.from_model(network(), gradient_layers=["classifier"]), ce(), []

    def gbg_exact():
        grouping = gbg.ClassGrouping([0, 0, 1, 1])
        return training.GBGModel.from_model(network(), grouping, mode="exact"), ce(), []

    def max_norm():
        inputs = keras.Input((8,))
        hidden = keras.layers.Dense(16, activation="relu", name="features")(inputs)
        outputs = keras.layers.Dense(NUM_CLASSES, kernel_constraint=constraints.PerClassMaxNorm(0.2),
                                     name="classifier")(hidden)
        return keras.Model(inputs, outputs), ce(), []

    return {"gala": gala, "gradtail": gradtail, "gbg": gbg_exact, "max_norm": max_norm}


def train(strategy=None):
    """Trains every method on the same global batches; returns {name/weight_i: array, name/state_i: array}."""
    strategy = strategy or tf.distribute.get_strategy()
    x, y = data()
    out = {}
    for name, build in methods().items():
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model, loss, callbacks = build()
            model.compile(keras.optimizers.SGD(0.1), loss=loss)
            model(x[:1])  # build the weights and the optimizer state inside the scope
            model.optimizer.build(model.trainable_variables)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        distributed = strategy.experimental_distribute_dataset(dataset.with_options(options))
        step = tf.function(lambda batch: strategy.run(model.train_step, args=(batch,)))
        for callback in callbacks:
            callback.set_model(model)
            callback.on_train_begin()
        for batch in distributed:
            step(batch)
        for callback in callbacks:
            callback.on_train_end()
        for i, weight in enumerate(model.get_weights()):
            out[f"{name}/weight_{i}"] = weight
        for i, variable in enumerate(getattr(loss, "variables", [])):
            out[f"{name}/state_{i}"] = np.asarray(variable.numpy())
    return out


if __name__ == "__main__":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    results = train(strategy)
    np.savez(sys.argv[1], **results)
