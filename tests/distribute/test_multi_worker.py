"""Two worker processes on 127.0.0.1 with MultiWorkerMirroredStrategy end with weights equal to one device."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests.distribute import multi_worker_job

pytestmark = pytest.mark.slow  # starts worker processes

TIMEOUT_SECONDS = 240


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_two_workers_match_single_device(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    root = pathlib.Path(__file__).resolve().parents[2]
    script = pathlib.Path(multi_worker_job.__file__)
    processes = []
    try:
        for index in range(2):
            env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                                       "index": index}}),
                       PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
                       CUDA_VISIBLE_DEVICES="")
            processes.append(subprocess.Popen(
                [sys.executable, str(script), str(tmp_path / f"worker{index}.npz")], env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        outputs = []
        for process in processes:
            try:
                outputs.append(process.communicate(timeout=TIMEOUT_SECONDS)[0])
            except subprocess.TimeoutExpired:
                pytest.fail(f"a worker did not finish within {TIMEOUT_SECONDS} s")
        for process, output in zip(processes, outputs):
            assert process.returncode == 0, output[-3000:]
    finally:
        for process in processes:  # always reaped
            if process.poll() is None:
                process.kill()
                process.wait()

    workers = [dict(np.load(tmp_path / f"worker{index}.npz")) for index in range(2)]
    reference = multi_worker_job.train()  # one device, same global batches
    assert set(workers[0]) == set(workers[1]) == set(reference)
    for key, expected in reference.items():
        np.testing.assert_array_equal(workers[0][key], workers[1][key], err_msg=key)
        np.testing.assert_allclose(workers[0][key], expected, rtol=1e-4, atol=1e-5, err_msg=key)
