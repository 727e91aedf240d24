"""Every exported class that runs inside `fit`: fit, serialization, `.keras` save/load, MirroredStrategy equal to
one device for the same global batch, and `jit_compile=True` on one device (see `cases.py`)."""

import importlib
import inspect
import json

import numpy as np
import pytest

from tests import helpers
from tests.contract import cases

# The public faces first, then the method folders: a class exported from both (`keras_longtail.gala.GALALoss` is
# `keras_longtail.losses.GALALoss`) is registered once, under its public-face name.
NAMESPACES = ("callbacks", "constraints", "data", "layers", "losses", "metrics", "ops", "optimizers", "training",
              "dual_phase", "gala", "gbg", "gradtail", "weight_balancing")
GLOBAL_BATCH = cases.GLOBAL_BATCH
STEPS = cases.STEPS


def _exported_classes():
    names, seen = [], set()
    for namespace in NAMESPACES:
        try:
            module = importlib.import_module(f"keras_longtail.{namespace}")
        except ModuleNotFoundError:
            continue
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and id(obj) not in seen:
                seen.add(id(obj))
                names.append(f"{namespace}.{name}")
    return names


_data = cases.data
_train = cases.train


def test_every_export_is_registered():
    missing = [name for name in _exported_classes() if name not in cases.CASES and name not in cases.NOT_IN_FIT]
    assert not missing, f"exported but not in tests/contract/cases.py: {missing}"
    stale = [name for name in cases.CASES if name not in _exported_classes()]
    assert not stale, f"registered but not exported: {stale}"


@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_fit_serialize_and_save(name, tmp_path):
    case, model, history, _ = _train(name)
    assert all(np.isfinite(values).all() for values in history.values()), history
    if "obj" in case:
        revived = helpers.assert_config_round_trip(case["obj"])
        json.dumps(revived.get_config())
    x, _ = _data()
    reloaded = helpers.assert_keras_save_load(model, x[:8], tmp_path, atol=1e-5)
    if "loss" in case["compile"]:
        assert type(reloaded.loss) is type(model.loss)


@pytest.mark.parametrize("name", sorted(cases.CASES))
@pytest.mark.slow
def test_mirrored_and_jit_equal_one_device(name):
    _, _, history, expected = _train(name)

    def mirrored(strategy):
        return _train(name)

    _, _, mirrored_history, got = helpers.run_mirrored(mirrored)
    _, _, _, jit = _train(name, jit_compile=True)
    for label, values in (("mirrored", got), ("jit_compile", jit)):
        assert len(values) == len(expected)
        for want, have in zip(expected, values):
            np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-5, err_msg=f"{name} under {label}")
    # Logged values (loss, metrics) are global, not divided by the number of replicas.
    for key, values in history.items():
        np.testing.assert_allclose(mirrored_history[key], values, rtol=1e-4, atol=1e-5, err_msg=key)
