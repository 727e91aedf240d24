"""Method defaults are stated once (keras_longtail/_internal/defaults.py) and the rest imports them."""

import ast
import inspect
import pathlib

from keras_longtail import cli
from keras_longtail import gradtail
from keras_longtail import recipes
from keras_longtail._internal import defaults

REPO = pathlib.Path(__file__).resolve().parents[2]
MAX_WEIGHT_NAMES = ("max_weight", "gradtail_max_weight")


def _default(function, name):
    return inspect.signature(function).parameters[name].default


def test_gradtail_defaults_come_from_one_place():
    assert gradtail.GradTailSigmoid().max_weight == defaults.GRADTAIL_MAX_WEIGHT == 3.0
    assert _default(gradtail.gradtail_depth, "max_weight") == defaults.GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT == 15.0
    assert recipes.get_method("gradtail").defaults["gradtail_max_weight"] == defaults.GRADTAIL_MAX_WEIGHT
    assert _default(cli.run_depth_training, "gradtail_max_weight") == defaults.GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT
    assert gradtail.GRADTAIL_MAX_WEIGHT is defaults.GRADTAIL_MAX_WEIGHT
    assert gradtail.GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT is defaults.GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT
    assert _default(gradtail.gradtail_depth, "pivot") == defaults.GRADTAIL_DEPTH_PIVOT == -0.5
    assert _default(cli.run_depth_training, "gradtail_pivot") == defaults.GRADTAIL_DEPTH_PIVOT
    assert gradtail.GRADTAIL_DEPTH_PIVOT is defaults.GRADTAIL_DEPTH_PIVOT


def _restated_max_weights(source):
    """(line, value) of every numeric literal given to a `max_weight` argument, default or dict key."""
    found = []
    for node in ast.walk(ast.parse(source)):
        pairs = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args.args + node.args.kwonlyargs
            defaults_ = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
            pairs += list(zip((a.arg for a in arguments), defaults_ + node.args.kw_defaults))
        elif isinstance(node, ast.Call):
            pairs += [(k.arg, k.value) for k in node.keywords]
        elif isinstance(node, ast.Dict):
            pairs += [(k.value, v) for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)]
        for name, value in pairs:
            if name in MAX_WEIGHT_NAMES and isinstance(value, ast.Constant) and value.value in (3.0, 15.0):
                found.append((value.lineno, value.value))
    return found


def test_no_module_restates_the_gradtail_max_weights():
    offenders = []
    for folder in ("keras_longtail", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            offenders += [(str(path.relative_to(REPO)), *hit) for hit in _restated_max_weights(path.read_text())]
    assert not offenders, f"import the value from keras_longtail._internal.defaults instead: {offenders}"


def test_the_scan_finds_a_restated_default():
    source = "def f(max_weight=3.0):\n    pass\ng(gradtail_max_weight=15.0)\nC = {'max_weight': 15.0}\n"
    assert _restated_max_weights(source) == [(1, 3.0), (3, 15.0), (4, 15.0)]


def test_defaults_module_imports_nothing():
    """The command line imports it before Keras (`keras-longtail --help` stays fast): plain values only."""
    tree = ast.parse(pathlib.Path(defaults.__file__).read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
