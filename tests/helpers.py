"""Shared checks: serialization round trips, `.keras` save/load, MirroredStrategy runs, kill-and-resume."""

import copy
import functools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf


def _as_json(config):
    return json.loads(json.dumps(config, sort_keys=True))


def assert_config_round_trip(obj):
    """get_config is plain JSON; from_config and serialize/deserialize rebuild an equal config."""
    config = obj.get_config()
    json.dumps(config)  # plain JSON, or this raises
    rebuilt = type(obj).from_config(copy.deepcopy(config))  # Keras' optimizers write into the dict they get
    assert _as_json(rebuilt.get_config()) == _as_json(config)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(obj)))
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is type(obj)
    assert _as_json(revived.get_config()) == _as_json(config)
    return revived


def assert_keras_save_load(model, inputs, tmp_path, atol=1e-6):
    """Saves `model` as .keras, reloads it and checks equal outputs on `inputs`."""
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(inputs, training=False)),
        keras.ops.convert_to_numpy(model(inputs, training=False)),
        atol=atol,
    )
    return reloaded


@functools.lru_cache(maxsize=None)
def mirrored_strategy():
    """MirroredStrategy over the two logical CPUs set up in conftest (one per process).

    Cached: a second MirroredStrategy in one process can fail with "Shape mismatch in the
    collective instance" when its collectives reuse the first one's keys.
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
    assert len(devices) == 2, "conftest must create two logical CPU devices"
    return tf.distribute.MirroredStrategy(devices)


def run_mirrored(fn):
    """Runs `fn(strategy)` inside the scope of a two-CPU MirroredStrategy."""
    strategy = mirrored_strategy()
    with strategy.scope():
        return fn(strategy)


class Interrupt(keras.callbacks.Callback):
    """Simulates a kill in the middle of epoch `epoch` (after `batch` batches) by raising `RuntimeError`."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self._current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch == self.batch:
            raise RuntimeError("interrupted")


def kill_and_resume(run, backup, epoch=1, batch=2):
    """`run(callbacks)` killed mid-epoch with the callback `backup()`, then run again in fresh objects.

    `run` must build every object afresh (model, loss, optimizer), as a restarted process would;
    returns what the resumed `run` returns.
    """
    with pytest.raises(RuntimeError, match="interrupted"):
        run([backup(), Interrupt(epoch=epoch, batch=batch)])
    return run([backup()])
