"""Readers for the on-disk layouts of the real data sets.

Each reader returns a `Source` or `None` with the reason it did not apply, so a
loader can tell the user everything it tried.
"""

import dataclasses
import gzip
import os
import pickle
import typing

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclasses.dataclass
class Source:
    """Balanced train and test splits before subsampling.

    `train_x`/`test_x` are uint8 image arrays (N, H, W, C) or, for image folders,
    arrays of file paths that `decode` turns into images.
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: list
    image_shape: tuple
    from_files: bool = False
    max_value: float = 255.0
    where: str = ""


def _unpickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _cifar_images(flat):
    return np.asarray(flat, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def read_cifar_pickle(root, name):
    """The original python-pickle layout (`cifar-10-batches-py/`, `cifar-100-python/`)."""
    if name == "cifar10":
        train_files = [os.path.join(root, f"data_batch_{i}") for i in range(1, 6)]
        test_file = os.path.join(root, "test_batch")
        meta_file, label_key, names_key = os.path.join(root, "batches.meta"), b"labels", b"label_names"
    else:
        train_files = [os.path.join(root, "train")]
        test_file = os.path.join(root, "test")
        meta_file, label_key, names_key = os.path.join(root, "meta"), b"fine_labels", b"fine_label_names"
    missing = [p for p in train_files + [test_file] if not os.path.isfile(p)]
    if missing:
        return None, f"pickle layout: missing {os.path.basename(missing[0])}"
    try:
        train = [_unpickle(p) for p in train_files]
        test = _unpickle(test_file)
        train_x = np.concatenate([_cifar_images(b[b"data"]) for b in train])
        train_y = np.concatenate([np.asarray(b[label_key]) for b in train])
        test_x, test_y = _cifar_images(test[b"data"]), np.asarray(test[label_key])
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as error:
        return None, f"pickle layout: unreadable ({type(error).__name__}: {error})"
    num_classes = 10 if name == "cifar10" else 100
    if os.path.isfile(meta_file):
        class_names = [n.decode() for n in _unpickle(meta_file)[names_key]]
    else:
        class_names = [str(k) for k in range(num_classes)]
    return Source(name, train_x, train_y, test_x, test_y, class_names, (32, 32, 3), where=root), None


def read_image_folder(root, name, num_classes, image_shape):
    """`train/<class>/*.jpg` and `test/<class>/*.jpg`, classes in alphabetical order.

    Files that cannot be decoded (empty, or a JPEG or PNG cut short: `image_file_problem`)
    are left out with one warning that names them and counts them.
    """
    splits = {}
    for split in ("train", "test"):
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            return None, f"image-folder layout: no {split}/ directory"
        classes = sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))
        if len(classes) != num_classes:
            return None, (
                f"image-folder layout: {split}/ has {len(classes)} class directories, expected {num_classes}"
            )
        paths, labels, skipped = [], [], []
        for label, class_name in enumerate(classes):
            class_dir = os.path.join(split_dir, class_name)
            files = sorted(f for f in os.listdir(class_dir) if f.lower().endswith(IMAGE_EXTENSIONS))
            for file in files:
                path = os.path.join(class_dir, file)
                problem = image_file_problem(path)
                if problem is None:
                    paths.append(path)
                    labels.append(label)
                else:
                    skipped.append(f"{path} ({problem})")
        if skipped:
            _warn_skipped(split_dir, skipped, len(paths) + len(skipped))
        splits[split] = (classes, np.asarray(paths), np.asarray(labels, dtype=np.int64))
    if splits["train"][0] != splits["test"][0]:
        return None, "image-folder layout: train/ and test/ have different class directories"
    classes = splits["train"][0]
    return Source(
        name, splits["train"][1], splits["train"][2], splits["test"][1], splits["test"][2],
        classes, image_shape, from_files=True, where=root,
    ), None


def image_file_problem(path):
    """Why TensorFlow could not decode the image file `path` (empty, or a JPEG or PNG cut short), else `None`.

    Reads only the first and last bytes of the file: a JPEG must end with its end-of-image
    marker FF D9 (`tf.io.decode_image` fails without it, "jpeg::Uncompress failed") and a
    PNG with its IEND chunk.
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            head = file.read(8)
            file.seek(max(0, size - 64))
            tail = file.read()
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    if size == 0:
        return "empty file"
    if head.startswith(b"\xff\xd8"):
        return None if b"\xff\xd9" in tail else "truncated JPEG: no end-of-image marker"
    if head.startswith(b"\x89PNG"):
        return None if b"IEND" in tail else "truncated PNG: no IEND chunk"
    return None


def _warn_skipped(directory, skipped, total, shown=10):
    import warnings

    listed = "\n  ".join(skipped[:shown]) + (f"\n  ... and {len(skipped) - shown} more" if len(skipped) > shown
                                             else "")
    warnings.warn(f"Skipped {len(skipped)} of {total} image files in {directory} that TensorFlow cannot decode:"
                  f"\n  {listed}", stacklevel=3)


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {magic:#x})")
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return array.reshape(shape)


FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def read_idx_mnist(root, name, class_names):
    """The four IDX files of (Fashion-)MNIST, gzip-compressed or not."""
    stems = {
        "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
        "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
    }
    arrays = {}
    for key, stem in stems.items():
        path = next((os.path.join(root, stem + ext) for ext in (".gz", "")
                     if os.path.isfile(os.path.join(root, stem + ext))), None)
        if path is None:
            return None, f"IDX layout: missing {stem}(.gz)"
        try:
            arrays[key] = _read_idx(path)
        except (OSError, ValueError) as error:
            return None, f"IDX layout: unreadable {os.path.basename(path)} ({error})"
    return Source(
        name, arrays["train_x"][..., None], arrays["train_y"].astype(np.int64),
        arrays["test_x"][..., None], arrays["test_y"].astype(np.int64),
        list(class_names), (28, 28, 1), where=root,
    ), None


# Where tensorflow-datasets downloads each data set from (its builders' URLs), probed before a download.
TFDS_DOWNLOAD_HOSTS = {
    "cifar10": ("www.cs.toronto.edu", 443),
    "cifar100": ("www.cs.toronto.edu", 443),
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
}
# Seconds to wait for that host before calling the machine offline (tensorflow-datasets itself retries for minutes).
TFDS_PROBE_TIMEOUT = 5.0


def download_host_reachable(host, port, timeout=None):
    """Whether a TCP connection to `host:port` opens within `timeout` seconds (name lookup included)."""
    import socket

    timeout = TFDS_PROBE_TIMEOUT if timeout is None else timeout
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_tfds(tfds_name, name, image_shape):
    """tensorflow-datasets: a prepared copy, else a download when the download host answers.

    Offline, tensorflow-datasets would retry the download for minutes and leave empty
    `incomplete.*` folders behind; here an unreachable host fails at once, and a failed
    download removes the folders it created.
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        return None, f"tensorflow-datasets {tfds_name!r}: not installed ({error})"
    created = []
    try:
        builder = tfds.builder(tfds_name)
        dataset_dir = os.path.dirname(builder.data_dir)
        if not builder.is_prepared():
            host, port = TFDS_DOWNLOAD_HOSTS.get(tfds_name, ("storage.googleapis.com", 443))
            if not download_host_reachable(host, port):
                return None, (f"tensorflow-datasets {tfds_name!r}: not downloaded yet (in {dataset_dir}) and "
                              f"{host} is unreachable (offline?); no download was attempted")
            before = set(os.listdir(dataset_dir)) if os.path.isdir(dataset_dir) else None
            created = [(dataset_dir, before)]
        (train, test), info = tfds.load(
            tfds_name, split=["train", "test"], as_supervised=True, batch_size=-1, with_info=True
        )
        train_x, train_y = tfds.as_numpy(train)
        test_x, test_y = tfds.as_numpy(test)
    except Exception as error:  # noqa: BLE001 - any failure is reported with the others
        for dataset_dir, before in created:
            _remove_incomplete(dataset_dir, before)
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return None, f"tensorflow-datasets {tfds_name!r}: {type(error).__name__}: {message[:200]}"
    class_names = list(info.features["label"].names)
    return Source(
        name, train_x, train_y.astype(np.int64), test_x, test_y.astype(np.int64),
        class_names, image_shape, where=f"tensorflow-datasets:{tfds_name}",
    ), None


def _remove_incomplete(dataset_dir, before):
    """Removes the `incomplete.*` folders a failed download left in `dataset_dir` (and the folder, when the
    download created it and it is now empty)."""
    import shutil

    if not os.path.isdir(dataset_dir):
        return
    for entry in set(os.listdir(dataset_dir)) - set(before or ()):
        if entry.startswith("incomplete.") or ".incomplete" in entry:
            shutil.rmtree(os.path.join(dataset_dir, entry), ignore_errors=True)
    if before is None and not os.listdir(dataset_dir):
        os.rmdir(dataset_dir)


def candidate_dirs(data_dir, subdirs):
    """`data_dir` itself, then its known sub-directories that exist."""
    dirs = [data_dir] + [os.path.join(data_dir, s) for s in subdirs]
    return [d for d in dirs if os.path.isdir(d)]


def first_source(attempts: typing.List[typing.Tuple[str, typing.Callable]]):
    """Runs `(description, reader)` pairs in order; returns the source and the log."""
    tried = []
    for description, reader in attempts:
        source, reason = reader()
        if source is not None:
            return source, tried
        tried.append(f"{description}: {reason}")
    return None, tried
