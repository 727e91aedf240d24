"""Announcements, progress bars, checkpoints and the clock of one `run_training` call."""

import json
import math
import os
import time


def announce(verbose, message):
    """Prints the start of a phase of `run_training` (unless `verbose` is 0)."""
    if verbose:
        print(f"keras-longtail: {message}", flush=True)


def with_progress(batches, num_batches, verbose):
    """`batches` as an iterable that advances a Keras progress bar (verbose 1: live; 2: one line at the end)."""
    if not verbose:
        return batches
    import keras

    class _Batches:
        def __iter__(self):
            bar = keras.utils.Progbar(num_batches, verbose=verbose, unit_name="batch")
            for done, batch in enumerate(batches, 1):
                yield batch
                bar.update(done)

    return _Batches()


def _plain_logs(logs):
    """Training logs as plain JSON: each scalar as a float with 6 significant digits, None where it is not finite
    (a diverged loss; JSON has no NaN); values that are not scalars are left out."""
    plain = {}
    for key, value in sorted((logs or {}).items()):
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        plain[key] = float(f"{number:.6g}") if math.isfinite(number) else None
    return plain


class Progress:
    """Per-epoch checkpoints and time accounting of one `run_training` call in `state_dir` (or none).

    Each `fit` of the run (a phase) gets its own `BackupAndRestore` sub-folder, kept after
    the phase ends so that a later interruption can still resume the run from there, and
    `progress.json` records the epochs done per phase and the wall and CPU seconds of the
    finished epochs. The run's totals are the earlier calls' recorded seconds plus this
    call's own clock. `kept` / `keep` hold what a method computed once before its first
    epoch (GBG's grouping), so a resumed call reuses it instead of recomputing it.
    `epoch_logs` holds each phase's training logs per epoch (kept in `progress.json` too,
    so a resumed run's list starts with the interrupted call's epochs).
    """

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.state = {"phases": {}, "wall_seconds": 0.0, "cpu_seconds": 0.0}
        if state_dir is not None:
            from keras_longtail._internal import files as _files

            _files.makedirs(state_dir)
            if _files.exists(self.path):
                self.state = json.loads(_files.read_bytes(self.path))
        self.resumed_from = dict(self.state["phases"])
        self.earlier_wall, self.earlier_cpu = self.state["wall_seconds"], self.state["cpu_seconds"]
        self.wall_start, self.cpu_start = time.perf_counter(), time.process_time()

    @property
    def path(self):
        return os.path.join(self.state_dir, "progress.json")

    def totals(self):
        """(wall, CPU) seconds of the run so far, interrupted calls included."""
        return (self.earlier_wall + time.perf_counter() - self.wall_start,
                self.earlier_cpu + time.process_time() - self.cpu_start)

    def callbacks(self, phase, epochs):
        """The callbacks of one `fit` (a phase): the epoch-log record, and with a state directory the
        per-epoch checkpoint (first, so that a resumed `fit` starts at the checkpoint's epoch)."""
        import keras

        from keras_longtail import callbacks as lt_callbacks

        progress = self

        class _Record(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                progress.record(phase, epoch + 1, epochs, logs)

        if self.state_dir is None:
            return [_Record()]
        backup = lt_callbacks.BackupAndRestore(os.path.join(self.state_dir, phase), delete_checkpoint=False)
        return [backup, _Record()]

    @property
    def epoch_logs(self):
        """{phase: [the training logs of epoch 1, 2, ...]}: each scalar log as a float rounded to 6
        significant digits (None where it was not finite); logs that are not scalars are left out, and an
        epoch finished before the state kept logs (an older run's state) is `{}`."""
        return {phase: list(logs) for phase, logs in self.state.get("logs", {}).items()}

    def kept(self, key):
        """The plain-JSON value an earlier call of this run stored with `keep(key, value)`, or None."""
        return self.state.get("kept", {}).get(key)

    def keep(self, key, value):
        """Stores the plain-JSON `value` under `key` in `progress.json` (nothing without a state directory)."""
        if self.state_dir is None:
            return
        self.state.setdefault("kept", {})[key] = value
        self._write()

    def record(self, phase, epoch, epochs, logs=None):
        """Records that `phase` finished `epoch` (1-based) of `epochs`, with its training `logs`."""
        logged = self.state.setdefault("logs", {}).setdefault(phase, [])
        del logged[epoch - 1:]  # a resumed phase repeats nothing
        logged.extend({} for _ in range(epoch - 1 - len(logged)))  # epochs of a state that kept no logs
        logged.append(_plain_logs(logs))
        if self.state_dir is None:
            return
        wall, cpu = self.totals()
        self.state["phases"][phase] = {"epoch": epoch, "epochs": epochs}
        self.state["wall_seconds"], self.state["cpu_seconds"] = round(wall, 2), round(cpu, 2)
        self._write()

    def _write(self):
        from keras_longtail._internal import files as _files

        _files.write_bytes(self.path, json.dumps(self.state, indent=1).encode())  # never half a file
