"""Fashion-MNIST-LT."""

import os

from keras_longtail._internal import validation as _validation
from keras_longtail.data import _build
from keras_longtail.data import _sources

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
_SUBDIRS = ["fashion-mnist", "fashion_mnist"]


def load_fashion_mnist_lt(imbalance_factor=100, data_dir=None, kind="exp", seed=None):
    """Loads Fashion-MNIST-LT: long-tailed train split, balanced test split.

    n_i = floor(6000 * IF^(-i/9)) training images of class i (IF 100: 6,000 ... 60,
    14,886 images; no class is Few-shot), chosen by `long_tailed`.

    Sources, tried in order: the four IDX files (`train-images-idx3-ubyte.gz`, ...)
    in `data_dir` (authoritative when given), else in `KERAS_LONGTAIL_DATA`, else in
    Debian's `/usr/share/datasets/fashion-mnist/` (`apt-get install
    dataset-fashion-mnist`), else tensorflow-datasets.

    Images are float32 in [0, 1], shape (28, 28, 1); labels int32.

    Args:
        imbalance_factor: ratio n_max / n_min, >= 1. Defaults to 100.
        data_dir: directory holding the IDX files, or `None`. Defaults to `None`.
        kind: `"exp"` or `"step"` profile. Defaults to `"exp"`.
        seed: `None` for the deterministic first-n rule, or an int. Defaults to `None`.

    Returns:
        A `LongTailedData(train, test, class_counts, class_names)`.

    Example:

    ```python
    data = load_fashion_mnist_lt(imbalance_factor=100)
    data.class_counts[:3]  # [6000, 3596, 2156]
    ```
    """
    _validation.check_float("imbalance_factor", imbalance_factor, minimum=1.0)
    if data_dir is not None and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"Expected `data_dir` to be a directory. Received: data_dir={data_dir!r}")
    if data_dir is not None:
        directories = [data_dir]
    else:
        directories = [d for d in (os.environ.get("KERAS_LONGTAIL_DATA"), DEBIAN_DIR) if d]
    attempts = []
    for directory in directories:
        for root in _sources.candidate_dirs(directory, _SUBDIRS):
            attempts.append((root, lambda root=root: _sources.read_idx_mnist(
                root, "fashion_mnist", _sources.FASHION_MNIST_CLASSES)))
    if data_dir is None:
        attempts.append(("tensorflow-datasets",
                         lambda: _sources.read_tfds("fashion_mnist", "fashion_mnist", (28, 28, 1))))
    source, tried = _sources.first_source(attempts)
    if source is None:
        where = f"data_dir={data_dir!r}" if data_dir is not None else "no data_dir"
        raise FileNotFoundError(
            f"No Fashion-MNIST files found ({where}). Tried:\n  - " + "\n  - ".join(tried or ["nothing"])
            + f"\nOn Debian/Ubuntu: `apt-get install dataset-fashion-mnist` (files in {DEBIAN_DIR}), "
            "or pass `data_dir` (`--data-dir DIR` on the command line, or set KERAS_LONGTAIL_DATA) naming a "
            "directory holding the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (gzip-compressed .gz or not; in DIR or "
            "DIR/fashion-mnist/)."
        )
    return _build.build_long_tailed(source, imbalance_factor, kind=kind, seed=seed)
