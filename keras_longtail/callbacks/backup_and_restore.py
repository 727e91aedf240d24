"""`keras.callbacks.BackupAndRestore` that also backs up the state of stateful losses."""

import io
import os

import keras
import numpy as np

from keras_longtail._internal import files as _files

STATE_FILE = "loss_state.npz"


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore`, plus the variables of the compiled losses (e.g. `GALALoss` statistics).

    `keras.callbacks.BackupAndRestore` checkpoints `model.save_weights()`: the
    model's weights and the optimizer, not the loss. A loss that keeps state in
    variables, like `GALALoss` (θ, φ, its running totals), would resume from
    zero statistics after an interruption, so the resumed run silently differs
    from an uninterrupted one. This subclass writes the variables of every loss
    in `model.loss` that has `variables` to `loss_state.npz` in `backup_dir`
    each time it saves, and assigns them back when training resumes.

    With a `keras_longtail.layers.GALAStatistics` layer on the logits
    (`GALALoss(..., statistics=layer)`), GALA's statistics are model weights
    and Keras' own `keras.callbacks.BackupAndRestore` already restores them;
    this subclass then only adds the loss's `accumulating` flag.

    The other methods keep their state where a checkpoint finds it, and tests
    kill a run mid-epoch and resume it in fresh objects to the uninterrupted
    run's weights and state: GradTail's w̃, σ and step counter and GBG's
    grouping (`gbg_groups`) are model variables (so Keras' callback restores
    them too); `PerClassMaxNormProjection` takes δ from the kernel `fit`
    starts with, before this callback restores the checkpoint; dual-phase
    training saves what lies between its two `fit` calls with
    `DualPhaseTraining.save_phase_one` / `load_phase_one`. A resumed epoch
    sees the same batches only if the data order does not depend on what
    ran before (Keras' `shuffle=True` of arrays draws a new order).

    Saving the loss state is supported with `save_freq="epoch"` (the default,
    and Keras' resume point: a run killed mid-epoch restarts that epoch from the
    last epoch-end checkpoint). With an integer `save_freq`, Keras restores
    mid-epoch weights but restarts the epoch from its first batch, so no state
    could make the resumed run equal an uninterrupted one; it is rejected.

    Args:
        backup_dir: directory for the checkpoint (weights, training metadata,
            loss state). Must not be shared with another run.
        save_freq: `"epoch"`. Defaults to `"epoch"`.
        double_checkpoint: also keep the previous checkpoint. Defaults to `False`.
        delete_checkpoint: delete the checkpoint when training completes.
            Defaults to `True`.

    Example:

    ```python
    model.compile("sgd", loss=GALALoss(num_classes=10))
    model.fit(x, y, epochs=200, callbacks=[GALAAccumulator(), BackupAndRestore("/tmp/backup")])
    ```

    >>> import tempfile
    >>> from keras_longtail.losses import GALALoss
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile("sgd", loss=GALALoss(num_classes=3))
    >>> backup = BackupAndRestore(tempfile.mkdtemp(), delete_checkpoint=False)
    >>> _ = model.fit(np.ones((6, 4)), np.arange(6) % 3, callbacks=[backup], verbose=0)
    >>> sorted(os.listdir(backup.backup_dir))
    ['latest.weights.h5', 'loss_state.npz', 'training_metadata.json']
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        if save_freq != "epoch":
            raise ValueError(
                "Expected `save_freq='epoch'`: Keras resumes an interrupted run at the start of an epoch, so "
                f"mid-epoch checkpoints cannot resume the loss state consistently. Received: save_freq={save_freq!r}")
        super().__init__(backup_dir, save_freq=save_freq, double_checkpoint=double_checkpoint,
                         delete_checkpoint=delete_checkpoint)
        self._state_path = os.path.join(backup_dir, STATE_FILE)

    def _stateful_variables(self):
        losses = keras.tree.flatten(getattr(self.model, "loss", None))
        return [variable for loss in losses for variable in (getattr(loss, "variables", None) or [])]

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        variables = self._stateful_variables()
        if not variables or not _files.exists(self._state_path):
            return
        with np.load(io.BytesIO(_files.read_bytes(self._state_path))) as stored:
            if len(stored.files) != len(variables):
                raise ValueError(
                    f"The loss state in {self._state_path} holds {len(stored.files)} variables but the model's "
                    f"losses have {len(variables)}: `backup_dir` belongs to a different run. "
                    f"Received: backup_dir={self.backup_dir!r}")
            for index, variable in enumerate(variables):
                variable.assign(stored[f"v{index}"])

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        variables = self._stateful_variables()
        if variables:
            arrays = {f"v{index}": keras.ops.convert_to_numpy(v) for index, v in enumerate(variables)}
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            _files.write_bytes(self._state_path, buffer.getvalue())  # via a temporary file: never half a file
