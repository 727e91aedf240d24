"""CIFAR-10-LT and CIFAR-100-LT."""

import os

from keras_longtail._internal import validation as _validation
from keras_longtail.data import _build
from keras_longtail.data import _sources

_SUBDIRS = {
    "cifar10": ["cifar-10-batches-py", "cifar10", "cifar-10", "cifar10-jpeg"],
    "cifar100": ["cifar-100-python", "cifar100", "cifar-100", "cifar100-jpeg"],
}
_ARCHIVES = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}
_PICKLE_FILES = {"cifar10": "data_batch_1 .. data_batch_5, test_batch", "cifar100": "train, test"}


def load_cifar_lt(name="cifar10", imbalance_factor=100, data_dir=None, kind="exp", seed=None):
    """Loads CIFAR-10-LT or CIFAR-100-LT: long-tailed train split, balanced test split.

    The train split keeps n_i = floor(n_max * IF^(-i/(C-1))) images of class i
    (`imbalance_profile`; n_max = 5,000 for CIFAR-10, 500 for CIFAR-100), chosen by
    `long_tailed` (the first n_i of each class in file order, or a seeded random
    subset). CIFAR-10 with IF 100 has 12,406 training images, CIFAR-100 10,847.

    Sources, tried in order, the first that holds the data wins:

    1. a directory in the original python-pickle layout (`cifar-10-batches-py/`
       with `data_batch_1..5`, `test_batch`; `cifar-100-python/` with `train`, `test`);
    2. an image-folder layout, `train/<class>/*.jpg` and `test/<class>/*.jpg` with
       classes in alphabetical order (what `keras.utils.image_dataset_from_directory`
       reads; the CIFAR-10 JPEG archive in the project's shared data has it);
    3. tensorflow-datasets: its prepared copy, else a download when the download host
       answers within seconds (offline, this fails at once instead of retrying, and a
       failed download removes the `incomplete.*` folders it left).

    The directory is `data_dir` or, if that is `None`, the `KERAS_LONGTAIL_DATA`
    environment variable; each is searched itself and in its usual sub-directories
    (`cifar-10-batches-py`, `cifar10`, ...). An explicit directory is authoritative:
    when it holds no CIFAR files, a `FileNotFoundError` lists what was tried and no
    download is attempted. Only when no directory is given at all is
    tensorflow-datasets tried.

    Images are float32 in [0, 1], shape (32, 32, 3); labels int32. Both splits are
    cached in memory after their first pass.

    Args:
        name: `"cifar10"` or `"cifar100"`. Defaults to `"cifar10"`.
        imbalance_factor: ratio n_max / n_min, >= 1. Defaults to 100.
        data_dir: directory holding the data, or `None`. Defaults to `None`.
        kind: `"exp"` or `"step"` profile. Defaults to `"exp"`.
        seed: `None` for the deterministic first-n rule, or an int. Defaults to `None`.

    Returns:
        A `LongTailedData(train, test, class_counts, class_names)`.

    Example:

    ```python
    train, test, counts, names = load_cifar_lt("cifar10", 100, data_dir="cifar10-jpeg")
    sum(counts)  # 12406
    ```
    """
    _validation.check_choice("name", name, {"cifar10", "cifar100"})
    _validation.check_float("imbalance_factor", imbalance_factor, minimum=1.0)
    num_classes = 10 if name == "cifar10" else 100
    attempts = []
    directory = data_dir if data_dir is not None else os.environ.get("KERAS_LONGTAIL_DATA")
    if data_dir is not None and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"Expected `data_dir` to be a directory. Received: data_dir={data_dir!r}")
    if directory:
        for root in _sources.candidate_dirs(directory, _SUBDIRS[name]):
            attempts.append((root, lambda root=root: _sources.read_cifar_pickle(root, name)))
            attempts.append((root, lambda root=root: _sources.read_image_folder(
                root, name, num_classes, (32, 32, 3))))
    if data_dir is None:
        attempts.append(("tensorflow-datasets", lambda: _sources.read_tfds(name, name, (32, 32, 3))))
    source, tried = _sources.first_source(attempts)
    if source is None:
        where = f"data_dir={data_dir!r}" if data_dir is not None else (
            f"KERAS_LONGTAIL_DATA={directory!r}" if directory else "no data_dir and no KERAS_LONGTAIL_DATA")
        raise FileNotFoundError(
            f"No {name.upper()} files found ({where}). Tried:\n  - " + "\n  - ".join(tried)
            + "\nPass `data_dir` (`--data-dir DIR` on the command line, or set KERAS_LONGTAIL_DATA) naming a "
            "directory in one of the accepted layouts: the python-pickle files as extracted from "
            f"{_ARCHIVES[name]} ({_PICKLE_FILES[name]}, in DIR or DIR/{_SUBDIRS[name][0]}/), or image folders "
            f"train/<class>/*.jpg and test/<class>/*.jpg ({num_classes} classes, in DIR or one of "
            f"{', '.join(_SUBDIRS[name][1:])})."
        )
    return _build.build_long_tailed(source, imbalance_factor, kind=kind, seed=seed)
