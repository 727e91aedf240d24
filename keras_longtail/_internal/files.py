"""File access for checkpoints that also reaches remote storage (e.g. `gs://` on a Cloud TPU).

On the TensorFlow backend it goes through `tf.io.gfile` (local paths, GCS, ...), as Keras'
own `BackupAndRestore` does; on other backends through the local file system.
"""

import os

import keras


def _gfile():
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    return tf.io.gfile


def exists(path):
    gfile = _gfile()
    return gfile.exists(path) if gfile else os.path.exists(path)


def makedirs(path):
    gfile = _gfile()
    if gfile:
        gfile.makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def read_bytes(path):
    gfile = _gfile()
    with (gfile.GFile(path, "rb") if gfile else open(path, "rb")) as file:
        return file.read()


def replace(source, target):
    """Renames `source` to `target`, replacing it (atomic on a local file system)."""
    gfile = _gfile()
    if gfile:
        gfile.rename(source, target, overwrite=True)
    else:
        os.replace(source, target)


def write_bytes(path, data):
    """Writes `data` to a temporary file next to `path`, then renames it: a kill never leaves half a file."""
    temporary = path + ".tmp"
    gfile = _gfile()
    with (gfile.GFile(temporary, "wb") if gfile else open(temporary, "wb")) as file:
        file.write(data)
    replace(temporary, path)
