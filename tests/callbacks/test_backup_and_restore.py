import keras
import numpy as np
import pytest

from keras_longtail.callbacks import BackupAndRestore
from keras_longtail.callbacks import GALAAccumulator
from keras_longtail.losses import GALALoss

X = np.random.default_rng(0).normal(size=(48, 6)).astype("float32")
Y = np.arange(48) % 3
EPOCHS = 3


class _Interrupt(keras.callbacks.Callback):
    """Simulates a kill in the middle of epoch `epoch` (after `batch` batches)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self._current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch == self.batch:
            raise RuntimeError("interrupted")


def _run(callbacks):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    loss = GALALoss(3)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss=loss)
    model.fit(X, Y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
              callbacks=[GALAAccumulator(), *callbacks])
    return model, loss


def _resume_after_interrupt(backup_class, backup_dir):
    with pytest.raises(RuntimeError, match="interrupted"):
        _run([backup_class(str(backup_dir)), _Interrupt(epoch=1, batch=2)])
    # A fresh process would rebuild everything: a new model and a new loss, then resume.
    return _run([backup_class(str(backup_dir))])


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    model, loss = _run([])
    resumed_model, resumed_loss = _resume_after_interrupt(BackupAndRestore, tmp_path / "backup")
    np.testing.assert_allclose(resumed_loss.theta.numpy(), loss.theta.numpy(), rtol=1e-5)
    np.testing.assert_allclose(resumed_loss.phi.numpy(), loss.phi.numpy(), rtol=1e-5)
    for want, have in zip(model.get_weights(), resumed_model.get_weights()):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "backup").exists()  # deleted when training completes


def test_keras_callback_alone_loses_the_loss_state(tmp_path):
    # Why the subclass exists: Keras' own callback restores the weights but not GALA's statistics.
    _, loss = _run([])
    _, resumed_loss = _resume_after_interrupt(keras.callbacks.BackupAndRestore, tmp_path / "backup")
    assert not np.allclose(resumed_loss.theta.numpy(), loss.theta.numpy(), rtol=1e-3)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        BackupAndRestore(str(tmp_path), save_freq=5)


def test_state_of_another_run_is_rejected(tmp_path):
    np.savez(tmp_path / "loss_state.npz", v0=np.zeros(3))
    (tmp_path / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    with pytest.raises(ValueError, match="backup_dir"):
        _run([BackupAndRestore(str(tmp_path))])
