"""Loaders, on files the tests write in the real formats and on the real files when present."""

import gzip
import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.data import imbalance_profile
from keras_longtail.data import load_cifar_lt
from keras_longtail.data import load_digits_lt
from keras_longtail.data import load_fashion_mnist_lt


def _images(labels, size, channels, rng):
    """Images whose first pixel encodes the example's position within its class."""
    images = rng.integers(0, 256, size=(len(labels), size, size, channels), dtype=np.uint8)
    position = np.zeros(len(labels), np.int64)
    for k in np.unique(labels):
        position[labels == k] = np.arange(np.sum(labels == k))
    images[:, 0, 0, 0] = position
    return images


def _write_cifar10_pickles(root, per_class=12, test_per_class=3, seed=0):
    rng = np.random.default_rng(seed)
    directory = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(directory)
    labels = rng.permutation(np.repeat(np.arange(10), per_class))
    images = _images(labels, 32, 3, rng)
    flat = images.transpose(0, 3, 1, 2).reshape(len(labels), -1)
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5)):
        with open(os.path.join(directory, f"data_batch_{i + 1}"), "wb") as f:
            pickle.dump({b"data": flat[part], b"labels": labels[part].tolist()}, f)
    test_labels = np.repeat(np.arange(10), test_per_class)
    test_images = rng.integers(0, 256, size=(len(test_labels), 3 * 32 * 32), dtype=np.uint8)
    with open(os.path.join(directory, "test_batch"), "wb") as f:
        pickle.dump({b"data": test_images, b"labels": test_labels.tolist()}, f)
    with open(os.path.join(directory, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [f"c{k}".encode() for k in range(10)]}, f)
    return labels, images


def test_cifar10_pickle_layout(tmp_path):
    labels, images = _write_cifar10_pickles(str(tmp_path))
    data = load_cifar_lt("cifar10", imbalance_factor=4, data_dir=str(tmp_path))
    expected = imbalance_profile(10, 12, 4)
    assert data.class_counts == expected
    assert data.class_names == [f"c{k}" for k in range(10)]
    xs, ys = zip(*[(x.numpy(), int(y)) for x, y in data.train])
    xs, ys = np.stack(xs), np.array(ys)
    assert np.bincount(ys, minlength=10).tolist() == expected
    assert xs.shape[1:] == (32, 32, 3) and xs.dtype == np.float32 and xs.max() <= 1.0
    # First n_k of each class in file order: positions 0..n_k-1, in order, and pixels decoded right.
    for k in range(10):
        positions = np.round(xs[ys == k][:, 0, 0, 0] * 255).astype(int)
        assert positions.tolist() == list(range(expected[k]))
    first = np.flatnonzero(labels == ys[0])[0]
    np.testing.assert_allclose(xs[0], images[first] / 255.0, atol=1e-6)
    assert sum(1 for _ in data.test) == 30


def test_cifar100_pickle_layout(tmp_path):
    rng = np.random.default_rng(1)
    directory = tmp_path / "cifar-100-python"
    directory.mkdir()
    labels = np.repeat(np.arange(100), 5)
    for split, split_labels in (("train", labels), ("test", np.arange(100))):
        data = rng.integers(0, 256, size=(len(split_labels), 3072), dtype=np.uint8)
        with open(directory / split, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": split_labels.tolist()}, f)
    data = load_cifar_lt("cifar100", imbalance_factor=5, data_dir=str(tmp_path))
    assert data.class_counts == imbalance_profile(100, 5, 5)
    assert data.num_classes == 100 and data.class_names[:2] == ["0", "1"]
    assert sum(1 for _ in data.train) == sum(data.class_counts)


def test_image_folder_layout(tmp_path):
    rng = np.random.default_rng(2)
    names = [f"class{k:02d}" for k in range(10)]
    for split, n in (("train", 6), ("test", 2)):
        for k, name in enumerate(names):
            os.makedirs(tmp_path / split / name)
            for i in range(n):
                image = np.full((32, 32, 3), 10 * k + i, np.uint8)
                png = tf.io.encode_png(image).numpy()
                (tmp_path / split / name / f"{i:04d}.png").write_bytes(png)
    data = load_cifar_lt("cifar10", imbalance_factor=3, data_dir=str(tmp_path))
    assert data.class_names == names
    assert data.class_counts == imbalance_profile(10, 6, 3)
    values = [(int(round(float(x[0, 0, 0]) * 255)), int(y)) for x, y in data.train]
    # File order within a class: value 10k + i for the first n_k files.
    for k in range(10):
        assert [v for v, y in values if y == k] == [10 * k + i for i in range(data.class_counts[k])]


def test_data_dir_without_cifar_files(tmp_path):
    (tmp_path / "something_else").mkdir()
    with pytest.raises(FileNotFoundError, match="data_dir=.*Tried"):
        load_cifar_lt("cifar10", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="data_dir"):
        load_cifar_lt("cifar10", data_dir=str(tmp_path / "missing"))


def test_cifar_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name"):
        load_cifar_lt("cifar1000", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="imbalance_factor"):
        load_cifar_lt("cifar10", imbalance_factor=0.5, data_dir=str(tmp_path))


def test_profile_larger_than_data_is_an_error(tmp_path):
    _write_cifar10_pickles(str(tmp_path), per_class=4)
    with pytest.raises(ValueError, match="imbalance_factor"):
        load_cifar_lt("cifar10", imbalance_factor=100, data_dir=str(tmp_path))


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_layout(tmp_path):
    rng = np.random.default_rng(3)
    train_labels = np.tile(np.arange(10), 20)
    train_images = _images(train_labels, 28, 1, rng)[..., 0]
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train_labels)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", train_images[:50])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", train_labels[:50])
    data = load_fashion_mnist_lt(imbalance_factor=10, data_dir=str(tmp_path))
    assert data.class_counts == imbalance_profile(10, 20, 10)
    x, y = next(iter(data.train))
    assert x.shape == (28, 28, 1) and int(y) == 0
    np.testing.assert_allclose(x.numpy()[..., 0], train_images[0] / 255.0, atol=1e-6)
    assert data.class_names[0] == "T-shirt/top"


def test_fashion_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)data_dir=.*IDX layout"):
        load_fashion_mnist_lt(data_dir=str(tmp_path))


def test_digits_lt():
    data = load_digits_lt()
    assert data.class_counts == [144, 103, 74, 53, 38, 27, 19, 14, 10, 7]
    x, _ = next(iter(data.train))
    assert x.shape == (8, 8, 1)
    assert np.bincount([int(y) for _, y in data.test]).tolist() == [30] * 10
    with pytest.raises(ValueError, match="imbalance_factor"):
        load_digits_lt(imbalance_factor=0)


@pytest.mark.slow
def test_real_cifar10_lt(cifar10_jpeg_dir):
    data = load_cifar_lt("cifar10", imbalance_factor=100, data_dir=cifar10_jpeg_dir)
    assert data.class_counts == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert data.num_train == 12406
    assert data.class_names[:3] == ["airplane", "automobile", "bird"]
    x, y = next(iter(data.train))
    expected = tf.io.decode_jpeg(tf.io.read_file(os.path.join(cifar10_jpeg_dir, "train", "airplane", "0000.jpg")))
    np.testing.assert_allclose(x.numpy(), expected.numpy() / 255.0, atol=1e-6)
    assert int(y) == 0
    test_labels = np.fromiter((int(y) for y in data.test.map(lambda x, y: y)), dtype=np.int64)
    assert np.bincount(test_labels).tolist() == [1000] * 10


def test_real_fashion_mnist_lt(fashion_mnist_dir):
    data = load_fashion_mnist_lt(imbalance_factor=100, data_dir=fashion_mnist_dir)
    assert data.class_counts == imbalance_profile(10, 6000, 100)
    assert data.num_train == 14886
    assert sum(1 for _ in data.test.map(lambda x, y: y)) == 10000


# --- issue 21: no data and no network, unreadable image files, known sizes --------------------------------------

class _Deadline:
    """Fails the test instead of letting it hang when the code under test waits longer than `seconds`."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        import signal

        def expire(signum, frame):
            raise TimeoutError(f"still waiting after {self.seconds} s (a download-retry loop?)")

        self.previous = signal.signal(signal.SIGALRM, expire)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        import signal

        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


@pytest.fixture
def offline_tfds(tmp_path, monkeypatch):
    """An empty tensorflow-datasets folder and download hosts that refuse connections at once."""
    import tensorflow_datasets as tfds

    from keras_longtail.data import _sources

    monkeypatch.delenv("KERAS_LONGTAIL_DATA", raising=False)
    real_builder = tfds.builder  # tfds reads TFDS_DATA_DIR once, at its import: point its builders here instead
    monkeypatch.setattr(tfds, "builder", lambda name, **kwargs: real_builder(
        name, **{"data_dir": str(tmp_path / "tfds"), **kwargs}))
    monkeypatch.setattr(_sources, "TFDS_DOWNLOAD_HOSTS", {
        name: ("127.0.0.1", 9) for name in ("cifar10", "cifar100", "fashion_mnist")})  # closed port
    return tmp_path / "tfds"


def test_cifar_without_data_dir_offline_fails_fast_and_says_how_to_fix_it(offline_tfds):
    with _Deadline(60), pytest.raises(FileNotFoundError) as error:
        load_cifar_lt("cifar10")
    message = str(error.value)
    assert "unreachable" in message and "no download was attempted" in message
    assert "--data-dir" in message and "cifar-10-batches-py" in message and "train/<class>/*.jpg" in message
    assert not list(offline_tfds.rglob("incomplete.*"))


def test_fashion_mnist_without_data_offline_fails_fast(offline_tfds, monkeypatch):
    import importlib

    module = importlib.import_module("keras_longtail.data.load_fashion_mnist_lt")
    monkeypatch.setattr(module, "DEBIAN_DIR", str(offline_tfds / "no-debian-copy"))
    with _Deadline(60), pytest.raises(FileNotFoundError, match="--data-dir"):
        load_fashion_mnist_lt()


def test_a_failed_tfds_download_removes_its_incomplete_folders(offline_tfds, monkeypatch):
    import tensorflow_datasets as tfds

    from keras_longtail.data import _sources

    monkeypatch.setattr(_sources, "download_host_reachable", lambda host, port, timeout=None: True)
    (offline_tfds / "cifar10" / "incomplete.earlier").mkdir(parents=True)  # not ours: kept

    def failing_download(name, **kwargs):
        (offline_tfds / "cifar10" / "incomplete.ABC123").mkdir(parents=True)
        raise ConnectionError("connection reset during download")

    monkeypatch.setattr(tfds, "load", failing_download)
    with _Deadline(60), pytest.raises(FileNotFoundError, match="connection reset"):
        load_cifar_lt("cifar10")
    assert sorted(p.name for p in (offline_tfds / "cifar10").iterdir()) == ["incomplete.earlier"]


def test_loaders_give_the_training_split_a_known_size(tmp_path):
    # Keras warns that the input "ran out of data" when it predicts on a dataset of unknown size.
    assert int(load_digits_lt().train.cardinality()) == 144 + 103 + 74 + 53 + 38 + 27 + 19 + 14 + 10 + 7
    _write_cifar10_pickles(str(tmp_path))
    data = load_cifar_lt("cifar10", imbalance_factor=4, data_dir=str(tmp_path))
    assert int(data.train.cardinality()) == sum(data.class_counts)


def test_truncated_images_are_skipped_with_a_warning_that_names_them(tmp_path):
    rng = np.random.default_rng(3)
    for split, n in (("train", 5), ("test", 2)):
        for k in range(10):
            os.makedirs(tmp_path / split / f"c{k}")
            for i in range(n):
                jpeg = tf.io.encode_jpeg(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).numpy()
                (tmp_path / split / f"c{k}" / f"{i}.jpg").write_bytes(jpeg)
    broken = tmp_path / "train" / "c0" / "4.jpg"
    broken.write_bytes(broken.read_bytes()[:-2])  # only the end-of-image marker missing: still undecodable
    (tmp_path / "train" / "c1" / "0.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"Skipped 2 of 50 image files") as caught:
        data = load_cifar_lt("cifar10", imbalance_factor=1, data_dir=str(tmp_path))
    message = str(caught[0].message)
    assert f"{broken} (truncated JPEG" in message and "c1/0.jpg (empty file)" in message
    assert data.class_counts == [4] * 10  # the smallest class now has 4 readable images
    assert sum(1 for _ in data.train) == 40 and sum(1 for _ in data.test) == 20  # decodes without an error


def test_image_file_problem_accepts_whole_files_and_names_cut_ones(tmp_path):
    from keras_longtail.data import _sources

    image = np.zeros((8, 8, 3), np.uint8)
    for name, data in (("a.jpg", tf.io.encode_jpeg(image).numpy()), ("a.png", tf.io.encode_png(image).numpy())):
        (tmp_path / name).write_bytes(data)
        assert _sources.image_file_problem(str(tmp_path / name)) is None
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        assert "truncated" in _sources.image_file_problem(str(tmp_path / name))
