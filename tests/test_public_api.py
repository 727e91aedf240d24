"""Project-wide promises: public Keras/TF only, documented public names."""

import importlib
import inspect
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
FORBIDDEN = re.compile(r"^\s*(from|import)\s+(keras\.src|tensorflow\.python|tf_keras)\b|"
                       r"\b(keras\.src|tensorflow\.python|tf_keras)\.", re.MULTILINE)
# Every namespace the package exports (read from the package, so a new method folder cannot be left out).
NAMESPACES = [f"keras_longtail.{name}" for name in importlib.import_module("keras_longtail").__all__
              if name != "__version__"]


def _python_files():
    for folder in ("keras_longtail", "benchmarks", "tests", "notebooks"):
        yield from (REPO / folder).rglob("*.py")


def test_no_private_keras_or_tensorflow_imports():
    offenders = []
    for path in _python_files():
        if path.name == "test_public_api.py":
            continue
        if FORBIDDEN.search(path.read_text()):
            offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"private Keras/TF APIs used in: {offenders}"


def test_scanner_catches_private_imports():
    assert FORBIDDEN.search("from keras.src.losses import Loss")
    assert FORBIDDEN.search("import tensorflow.python.ops")
    assert FORBIDDEN.search("x = tf_keras.layers.Dense(1)")
    assert not FORBIDDEN.search("import keras\nfrom keras import ops")


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_public_names_have_docstrings_with_examples(namespace):
    module = importlib.import_module(namespace)
    assert module.__all__, f"{namespace} exports nothing"
    missing = []
    for name in module.__all__:
        obj = getattr(module, name)
        doc = inspect.getdoc(obj) or ""
        if inspect.isclass(obj) and issubclass(obj, tuple) and name in ("ShotSplits",):
            continue  # a plain namedtuple of results; documented where it is returned
        if "Example" not in doc and ">>>" not in doc:
            missing.append(name)
    assert not missing, f"{namespace}: no docstring example for {missing}"
