"""`model.fit` on two worker processes (127.0.0.1, MultiWorkerMirroredStrategy) equals one device.

Each test starts two workers of `multi_worker_job.py` (TF_CONFIG per process, free ports, bounded waits) and
compares what they end with (weights, method state, optimizer state, last-epoch logs) with each other and with
the same job run in this process on one device, on the same global batches.
"""

import functools
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest

from tests.distribute import multi_worker_job

pytestmark = pytest.mark.slow  # starts worker processes

TIMEOUT_SECONDS = 180  # per worker process; a worker needs 15-50 s on two busy cores
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_workers(case, workdir, *args, extra_env=None):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                   CUDA_VISIBLE_DEVICES="", **(extra_env or {}))
        processes.append(subprocess.Popen(
            [sys.executable, multi_worker_job.__file__, case, str(workdir), *map(str, args)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return processes


def _wait(process, timeout=TIMEOUT_SECONDS):
    """The process's output once it exits; kills it (and fails) if it runs past `timeout`."""
    try:
        return process.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
        pytest.fail(f"a worker did not finish within {timeout} s:\n{output[-3000:]}")


def _kill(processes):
    for process in processes:  # always reaped, whatever happened
        if process.poll() is None:
            process.kill()
        process.communicate()


def _run_workers(case, workdir, *args, extra_env=None):
    """Runs both workers to the end; returns their outputs and return codes."""
    processes = _start_workers(case, workdir, *args, extra_env=extra_env)
    try:
        outputs = [_wait(process) for process in processes]
    finally:
        _kill(processes)
    return outputs, [process.returncode for process in processes]


def _assert_same(workers, reference):
    assert set(workers[0]) == set(workers[1]) == set(reference)
    for key, expected in reference.items():
        np.testing.assert_array_equal(workers[0][key], workers[1][key], err_msg=key)
        np.testing.assert_allclose(workers[0][key], expected, rtol=1e-4, atol=1e-5, err_msg=key)


@functools.lru_cache(maxsize=None)
def _one_device(case):
    """The job run in this process on one device (no strategy): the uninterrupted reference."""
    with tempfile.TemporaryDirectory() as workdir:
        return multi_worker_job.run(case, workdir)


def _load(workdir):
    return [dict(np.load(workdir / f"worker{index}.npz")) for index in range(2)]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(multi_worker_job.CASES))
def test_fit_on_two_workers_equals_one_device(case, tmp_path):
    outputs, codes = _run_workers(case, tmp_path)
    for output, code in zip(outputs, codes):
        assert code == 0, output[-3000:]
        # Keras' own progress log, with the metric, on each worker.
        assert f"Epoch {multi_worker_job.EPOCHS}/{multi_worker_job.EPOCHS}" in output and "acc_overall" in output
    workers = _load(tmp_path)
    reference = _one_device(case)
    _assert_same(workers, reference)
    assert {"history/loss", "history/acc_overall", "history/acc_few"} <= set(reference)
    if case == "plain":
        assert {"history/val_loss", "history/val_acc_overall", "evaluate/acc_overall"} <= set(reference)
        assert reference["predict"].shape == (multi_worker_job.GLOBAL_BATCH * multi_worker_job.STEPS,
                                              multi_worker_job.NUM_CLASSES)  # every row, in order

    # BackupAndRestore deleted its checkpoints at the end; ModelCheckpoint wrote one file, on the chief.
    assert not (tmp_path / "backup" / "worker0").exists() and not (tmp_path / "backup" / "worker1").exists()
    assert (tmp_path / multi_worker_job.checkpoint_file(case)).exists()
    if case == "plain":
        saved = keras.saving.load_model(tmp_path / multi_worker_job.checkpoint_file(case))
        for index, weight in enumerate(saved.get_weights()):
            np.testing.assert_array_equal(weight, workers[0][f"weight_{index}"])


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(multi_worker_job.CASES))
def test_a_killed_worker_resumes_both_from_backup_and_restore(case, tmp_path):
    kill_epoch, kill_batch = 1, 1  # in the middle of the second of three epochs
    processes = _start_workers(case, tmp_path, kill_epoch, kill_batch)
    try:
        output = _wait(processes[1])
        assert processes[1].returncode == -9, output[-3000:]  # SIGKILL: nothing ran after the kill
    finally:  # the survivor cannot finish its next step without its peer: end it, as a scheduler would
        _kill(processes)
    assert not (tmp_path / "worker0.npz").exists() and not (tmp_path / "worker1.npz").exists()
    for index in range(2):  # each worker has its epoch-end checkpoint of the first epoch
        metadata = json.loads((tmp_path / "backup" / f"worker{index}" / "training_metadata.json").read_text())
        assert metadata["epoch"] == kill_epoch

    outputs, codes = _run_workers(case, tmp_path)  # both restarted, on new ports, from their backups
    for output, code in zip(outputs, codes):
        assert code == 0, output[-3000:]
        assert f"Epoch {kill_epoch + 1}/{multi_worker_job.EPOCHS}" in output  # resumed, not restarted
        assert "Epoch 1/" not in output
    _assert_same(_load(tmp_path), _one_device(case))  # the uninterrupted run


@pytest.mark.slow
def test_keras_fit_without_preparation_fails_on_two_workers(tmp_path):
    """keras-team/keras#20585, still open: when this test fails, Keras has fixed it (see docs/multi_worker.md)."""
    outputs, codes = _run_workers("plain", tmp_path, extra_env={"MULTI_WORKER_JOB_UNPREPARED": "1"})
    for output, code in zip(outputs, codes):
        assert code != 0 and "Attempt to convert a value (PerReplica" in output, output[-3000:]
