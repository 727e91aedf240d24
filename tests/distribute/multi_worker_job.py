"""A small `model.fit` job run by each worker of the multi-worker tests (and in-process, on one device, as the reference).

Every worker runs Keras' own `fit` under `tf.distribute.MultiWorkerMirroredStrategy` after
`keras_longtail.distribute.prepare_multi_worker_fit`, with the method's callbacks, a metric, the progress
log, `BackupAndRestore` (one directory per worker) and, on the chief only, `ModelCheckpoint`:

    python multi_worker_job.py CASE WORKDIR [KILL_EPOCH KILL_BATCH]   # TF_CONFIG names this worker

It writes WORKDIR/worker{index}.npz (weights, method state, optimizer state, history). With KILL_EPOCH and
KILL_BATCH, worker 1 kills itself (SIGKILL, no clean-up) after that batch of that epoch (both 0-based).
With MULTI_WORKER_JOB_UNPREPARED=1 in the environment, the model is not prepared (Keras' `fit` as it is).
"""

import os
import signal
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

NUM_CLASSES = 4
CLASS_COUNTS = [200, 60, 30, 10]  # declared training counts: Many / Medium / Few classes for ShotAccuracy
GLOBAL_BATCH = 16
STEPS = 4
EPOCHS = 3


def checkpoint_file(case):
    """What the chief's `ModelCheckpoint` writes: the whole model, or the weights of dual-phase's training model.

    (`DualPhaseTraining.build_phase_two_model()` returns a training wrapper that `model.save` cannot serialize,
    on one device as on several; the network to keep is `dual.model`.)
    """
    return "checkpoint.weights.h5" if case == "dual_phase_two" else "checkpoint.keras"


def data():
    """The global batches, in a fixed order (a resumed epoch must see the batches it saw before the kill)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 8)).astype("float32")
    y = (np.arange(GLOBAL_BATCH * STEPS) % NUM_CLASSES).astype("int32")
    x[np.arange(len(y)), y] += 1.5  # learnable, so the metric moves
    return x, y


def _network():
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu", name="features")(inputs)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, name="classifier")(hidden))


def _cross_entropy():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _plain():
    return _network(), _cross_entropy(), []


def _gala():
    from keras_longtail import callbacks, losses

    return _network(), losses.GALALoss(NUM_CLASSES), [callbacks.GALAAccumulator()]


def _gradtail():
    from keras_longtail import training

    return training.GradTailModel.from_model(_network(), gradient_layers=["classifier"]), _cross_entropy(), []


def _gbg():
    from keras_longtail import gbg, training

    grouping = gbg.ClassGrouping([0, 0, 1, 1])
    return training.GBGModel.from_model(_network(), grouping, mode="exact"), _cross_entropy(), []


def _max_norm():
    from keras_longtail import constraints

    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu", name="features")(inputs)
    outputs = keras.layers.Dense(NUM_CLASSES, kernel_constraint=constraints.PerClassMaxNorm(0.2),
                                 name="classifier")(hidden)
    return keras.Model(inputs, outputs), _cross_entropy(), []


def _dual_phase_two():
    from keras_longtail import models, training

    dual = training.DualPhaseTraining(models.mlp(NUM_CLASSES, (8,), hidden_units=(16,)), CLASS_COUNTS,
                                      threshold=2, memory_size=5)
    model = dual.build_phase_two_model()
    # Move the backbone off the frozen phase-I copy: at equal features every distance of L_dis is 0, where its
    # norm has no gradient and rounding alone would pick a direction (as in tests/training).
    hidden = dual.model.get_layer("hidden1")
    hidden.kernel.assign(hidden.kernel.numpy() + 0.3)
    return model, _cross_entropy(), []


CASES = {"plain": _plain, "gala": _gala, "gradtail": _gradtail, "gbg": _gbg, "max_norm": _max_norm,
         "dual_phase_two": _dual_phase_two}


class _KillAt(keras.callbacks.Callback):
    """SIGKILLs this process after batch `batch` of epoch `epoch`: no callback, no clean-up, no flush."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self._current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)


def run(case, workdir, strategy=None, task_index=0, is_chief=True, kill_at=None):
    """Trains `case` with `fit`; returns {"weight_i", "loss_state_i", "optimizer_i", "history/<key>", ...} arrays."""
    from keras_longtail import callbacks as longtail_callbacks
    from keras_longtail import distribute, metrics

    strategy = strategy or tf.distribute.get_strategy()
    x, y = data()
    keras.utils.set_random_seed(1)
    with strategy.scope():
        model, loss, method_callbacks = CASES[case]()
        if not os.environ.get("MULTI_WORKER_JOB_UNPREPARED"):  # set: Keras as it is (the upstream failure)
            distribute.prepare_multi_worker_fit(model)
            if case == "plain":
                distribute.prepare_multi_worker_fit(model)  # a second call must change nothing
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss=loss,
                      metrics=[metrics.ShotAccuracy(CLASS_COUNTS, many=100, few=20)])
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH).with_options(options)
    callbacks = method_callbacks + [
        longtail_callbacks.BackupAndRestore(os.path.join(workdir, "backup", f"worker{task_index}"))]
    if is_chief:  # one writer for the checkpoint that outlives the run
        path = os.path.join(workdir, checkpoint_file(case))
        callbacks.append(keras.callbacks.ModelCheckpoint(path, save_weights_only=path.endswith(".weights.h5")))
    if kill_at is not None:
        callbacks.append(_KillAt(*kill_at))
    validation = dataset if case == "plain" else None  # `evaluate` under the strategy too (val_* logs)
    history = model.fit(dataset, epochs=EPOCHS, callbacks=callbacks, verbose=2, shuffle=False,
                        validation_data=validation)
    out = {f"weight_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    out.update({f"loss_state_{i}": np.asarray(v.numpy()) for i, v in enumerate(getattr(loss, "variables", []))})
    out.update({f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.optimizer.variables)})
    # A resumed run's History holds only the epochs after the restart: keep the last epoch's logs.
    out.update({f"history/{key}": np.asarray(values[-1]) for key, values in history.history.items()})
    if case == "plain":  # `evaluate` and `predict` on their own, after `fit`
        logs = model.evaluate(dataset, verbose=0, return_dict=True)
        out.update({f"evaluate/{key}": np.asarray(value) for key, value in logs.items()})
        out["predict"] = model.predict(dataset, verbose=0)
    return out


if __name__ == "__main__":
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    case_name, directory = sys.argv[1], sys.argv[2]
    kill = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 and resolver.task_id == 1 else None
    results = run(case_name, directory, strategy, task_index=resolver.task_id,
                  is_chief=resolver.task_id == 0, kill_at=kill)
    np.savez(os.path.join(directory, f"worker{resolver.task_id}.npz"), **results)
    print("finished", case_name, flush=True)
