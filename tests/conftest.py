"""Shared data fixtures (the backend and the two logical CPUs are set up in ../conftest.py)."""

import pathlib
import tarfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR10_TARBALL = SHARED_DATA / "cifar10-jpeg.tar.gz"
FASHION_MNIST_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="session")
def cifar10_jpeg_dir(tmp_path_factory):
    """The real CIFAR-10 JPEGs from ../shared/data, extracted once to a temporary directory."""
    if not CIFAR10_TARBALL.is_file():
        pytest.skip(f"real CIFAR-10 not present ({CIFAR10_TARBALL} missing)")
    target = tmp_path_factory.mktemp("cifar10-jpeg")
    with tarfile.open(CIFAR10_TARBALL) as archive:
        archive.extractall(target, filter="data")
    return str(target)


@pytest.fixture(scope="session")
def fashion_mnist_dir():
    """Debian's Fashion-MNIST IDX files (`apt-get install dataset-fashion-mnist`)."""
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real Fashion-MNIST not present ({FASHION_MNIST_DIR}; apt-get install dataset-fashion-mnist)")
    return str(FASHION_MNIST_DIR)
