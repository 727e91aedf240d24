"""keras_longtail: long-tailed learning methods as drop-in Keras 3 primitives.

Namespaces follow Keras: `keras_longtail.data`, `keras_longtail.losses`,
`keras_longtail.layers`, `keras_longtail.callbacks`, `keras_longtail.constraints`,
`keras_longtail.metrics`, `keras_longtail.models`, `keras_longtail.ops`,
`keras_longtail.optimizers`, `keras_longtail.training` (train-step models and
multi-phase procedures) and `keras_longtail.distribute` (`model.fit` across
workers). Each method's code lives in its own folder: `keras_longtail.gala`,
`keras_longtail.gradtail`, `keras_longtail.weight_balancing`, `keras_longtail.gbg`
and `keras_longtail.dual_phase`; the Keras-style namespaces re-export their public
names (`keras_longtail.losses.GALALoss` is `keras_longtail.gala.GALALoss`). The
command line is `keras-longtail` (or `python -m keras_longtail`), over the
experiment recipes of `keras_longtail.recipes`.

`import keras_longtail` imports every namespace, so that all of the toolkit's
registered Keras objects are known to `keras.saving.load_model`. Only the
command line defers them (and with them Keras and TensorFlow) until after its
arguments are parsed, so that `keras-longtail --help` answers at once; there
each namespace loads on first use.
"""

import importlib as _importlib
import os as _os
import sys as _sys

from keras_longtail._internal import moved_modules as _moved_modules

_moved_modules.install()

__version__ = "0.1.0"

_NAMESPACES = ("callbacks", "constraints", "data", "distribute", "dual_phase", "gala", "gbg", "gradtail", "layers",
               "losses", "metrics", "models", "ops", "optimizers", "training", "weight_balancing")

__all__ = [*_NAMESPACES, "__version__"]


def __getattr__(name):
    if name in _NAMESPACES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMESPACES))


def _started_as_command_line():
    """True while the `keras-longtail` console script or `python -m keras_longtail` imports this package.

    The console script runs as `__main__` from a file named `keras-longtail`; for
    `python -m`, the interpreter's own arguments (`sys.orig_argv`) name the module run.
    """
    script = _os.path.basename(_sys.argv[0]) if _sys.argv and _sys.argv[0] else ""
    if script.split(".")[0] == "keras-longtail":
        return True
    arguments = list(getattr(_sys, "orig_argv", []))
    if "-m" in arguments[:-1]:
        module = arguments[arguments.index("-m") + 1]
        return module == __name__ or module == f"{__name__}.cli"
    return False


def _import_namespaces():
    for _name in _NAMESPACES:
        _importlib.import_module(f"{__name__}.{_name}")


if not _started_as_command_line():
    _import_namespaces()
