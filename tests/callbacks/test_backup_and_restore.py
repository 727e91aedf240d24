import keras
import numpy as np
import pytest

from keras_longtail.callbacks import BackupAndRestore
from keras_longtail.callbacks import GALAAccumulator
from keras_longtail import models
from keras_longtail.callbacks import PerClassMaxNormProjection
from keras_longtail.constraints import PerClassMaxNorm
from keras_longtail.gbg import ClassGrouping
from keras_longtail.losses import GALALoss
from keras_longtail.training import GBGModel
from keras_longtail.training import GradTailModel
from tests import helpers

X = np.random.default_rng(0).normal(size=(48, 6)).astype("float32")
Y = np.arange(48) % 3
EPOCHS = 3


def _run(callbacks):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    loss = GALALoss(3)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss=loss)
    model.fit(X, Y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0,
              callbacks=[GALAAccumulator(), *callbacks])
    return model, loss


def _resume_after_interrupt(backup_class, backup_dir):
    # A fresh process would rebuild everything: a new model and a new loss, then resume.
    return helpers.kill_and_resume(_run, lambda: backup_class(str(backup_dir)))


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


# ---------------------------------------------------------------------------------------------- GradTail
def _gradtail_run(callbacks):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = GradTailModel(inputs, keras.layers.Dense(3, name="classifier")(hidden), gradient_layers=["classifier"],
                          decay=0.8)
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, Y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return model


def _gradtail_state(model):
    return [model.gradtail_sigma.numpy(), model.gradtail_step.numpy()] + [
        v.numpy() for v in model.gradtail_mean_gradient]


class _ForgetGradTailState(keras.callbacks.Callback):
    """What a checkpoint without the GradTail variables would give: the state back at zero after the restore."""

    def on_train_begin(self, logs=None):
        for variable in [self.model.gradtail_sigma, self.model.gradtail_step, *self.model.gradtail_mean_gradient]:
            variable.assign(np.zeros(variable.shape, "float32"))


@pytest.mark.parametrize("backup_class", [BackupAndRestore, keras.callbacks.BackupAndRestore])
@pytest.mark.slow
def test_gradtail_resumes_with_its_state(tmp_path, backup_class):
    # GradTail's state (w̃, σ, step) is in model variables, so Keras' own callback restores it too.
    model = _gradtail_run([])
    resumed = helpers.kill_and_resume(_gradtail_run, lambda: backup_class(str(tmp_path / "backup")))
    assert resumed.gradtail_step.numpy() == model.gradtail_step.numpy() == EPOCHS * len(X) // 8
    for want, have in zip(_gradtail_state(model), _gradtail_state(resumed)):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-7)
    for want, have in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-7)


def test_gradtail_comparison_fails_when_the_state_is_lost(tmp_path):
    model = _gradtail_run([])
    resumed = helpers.kill_and_resume(
        lambda callbacks: _gradtail_run([*callbacks, _ForgetGradTailState()]),
        lambda: BackupAndRestore(str(tmp_path / "backup")))
    assert resumed.gradtail_step.numpy() != model.gradtail_step.numpy()
    assert not np.allclose(resumed.gradtail_sigma.numpy(), model.gradtail_sigma.numpy(), rtol=1e-3)
    assert not all(np.allclose(have, want, rtol=1e-3) for want, have in
                   zip(model.get_weights()[:4], resumed.get_weights()[:4]))


# ---------------------------------------------------------------------------------------------- GBG
GROUPING = ClassGrouping([0, 0, 1])
OTHER_GROUPING = ClassGrouping([0, 1, 1])  # what a re-computation on a restarted process might return


def _gbg_run(callbacks, grouping=GROUPING):
    keras.utils.set_random_seed(0)
    network = models.mlp(3, (6,), hidden_units=(8,))
    model = GBGModel.from_model(network, grouping, mode="exact")
    model.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, Y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    return model


@pytest.mark.parametrize("backup_class", [BackupAndRestore, keras.callbacks.BackupAndRestore])
@pytest.mark.slow
def test_gbg_resumes_with_the_grouping_of_the_interrupted_run(tmp_path, backup_class):
    model = _gbg_run([])
    with pytest.raises(RuntimeError, match="interrupted"):
        _gbg_run([backup_class(str(tmp_path / "backup")), helpers.Interrupt(epoch=1, batch=2)])
    # The restarted process builds its model with another grouping; the checkpoint's grouping wins.
    resumed = _gbg_run([backup_class(str(tmp_path / "backup"))], grouping=OTHER_GROUPING)
    assert resumed.grouping == GROUPING
    for want, have in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-7)


def test_gbg_groupings_give_different_weights():
    # Why the comparison above detects a lost grouping: the other grouping trains to other weights.
    model, other = _gbg_run([]), _gbg_run([], grouping=OTHER_GROUPING)
    assert not all(np.allclose(have, want, rtol=1e-3) for want, have in zip(model.get_weights(), other.get_weights()))


# ---------------------------------------------------------------------------------------------- weight balancing
class _KernelAtTrainBegin(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.kernel = self.model.get_layer("classifier").kernel.numpy()


def _projection_run(callbacks):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, name="classifier")])
    model.compile(keras.optimizers.SGD(0.5, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    projection = PerClassMaxNormProjection("classifier", thresh=0.1)
    # The projection after the backup: the order where δ and the end-of-epoch projection are most at risk.
    model.fit(X, Y, batch_size=8, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=[*callbacks, projection])
    return model, projection


@pytest.mark.parametrize("backup_class", [BackupAndRestore, keras.callbacks.BackupAndRestore])
def test_per_class_max_norm_projection_resumes_with_its_radius(tmp_path, backup_class):
    model, projection = _projection_run([])
    start = _KernelAtTrainBegin()
    resumed, resumed_projection = helpers.kill_and_resume(
        lambda callbacks: _projection_run([*callbacks, start]), lambda: backup_class(str(tmp_path / "backup")))
    assert resumed_projection.max_norm_ == pytest.approx(projection.max_norm_, rel=1e-6)
    # δ taken from the kernel the resumed fit starts from (the checkpoint's) would be another radius:
    assert PerClassMaxNorm.from_kernel(start.kernel).max_norm != pytest.approx(projection.max_norm_, rel=1e-2)
    norms = np.linalg.norm(model.get_layer("classifier").kernel.numpy(), axis=0)
    assert norms.max() == pytest.approx(projection.max_norm_, rel=1e-5)  # the projection was active
    for want, have in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------------------------- tf.distribute
def _weights_and_state(result):
    model, loss = result if isinstance(result, tuple) else (result, None)
    return model.get_weights() + ([v.numpy() for v in loss.variables] if loss is not None else [])


@pytest.mark.parametrize("name,run", [("gala", _run), ("gbg", _gbg_run)], ids=["gala", "gbg"])
@pytest.mark.slow
def test_resume_under_mirrored_strategy(tmp_path, name, run):
    # The checkpoint is written from and restored into variables mirrored over two replicas: a loss's
    # (assigned by the subclass) and GBG's int32 grouping (loaded with the weights).
    want = helpers.run_mirrored(lambda strategy: _weights_and_state(run([])))
    have = helpers.run_mirrored(lambda strategy: _weights_and_state(
        helpers.kill_and_resume(run, lambda: BackupAndRestore(str(tmp_path / name)))))
    assert len(have) == len(want)
    for expected, got in zip(want, have):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
