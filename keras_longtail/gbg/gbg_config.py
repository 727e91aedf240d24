"""GBG's grouping and solver settings, and their defaults, in one object."""

import keras

from keras_longtail._internal import validation as _validation
from keras_longtail.gbg import _min_norm
from keras_longtail.gbg.class_grouping import ClassGrouping
from keras_longtail.gbg.class_grouping import as_grouping

SOLVER_SETTINGS = ("normalization", "solver", "max_iterations", "tolerance")


@keras.saving.register_keras_serializable(package="keras_longtail")
class GBGConfig:
    """The grouping and min-norm solver settings of a GBG step: their one owner.

    A GBG step (`GBGModel` / `GBGMixin` inside `fit`, or `GBGOptimizer` in a
    custom loop) solves, over the groups g of `grouping` present in the batch,

        alpha = argmin_{alpha in simplex} || sum_g alpha_g grad L_g / c_g ||^2

    with the normalizer c_g of `normalization` and the in-graph `solver`, and
    applies d = sum_g alpha_g grad L_g. This object holds those settings, validated,
    with their defaults stated here once; `GBGModel`, `GBGMixin` and `GBGOptimizer`
    build one from their constructor arguments (an argument left at `None` there
    takes the default below), and the step reads only the one in force: the
    model's when the model was given a grouping, else the compiled
    `GBGOptimizer`'s. Plain-JSON `get_config`; immutable (`replace` returns a copy).

    Args:
        grouping: a `ClassGrouping` (or its config, or a list of group ids, one per
            class), or `None` (a `GBGOptimizer` used only on given group
            gradients needs none). Defaults to `None`.
        normalization: the normalizer c_g: `"none"` (1, the paper's Eq. 11 as
            printed), `"l2"` (||grad L_g||), `"loss"` (L_g) or `"loss+"`
            (L_g ||grad L_g||). Defaults to `"loss+"`, what the official code runs
            (GBG_v1 `utils.py:get_MGDA_weights` hard-codes `'loss+'`; the
            `--norm_st l2` flag of `cifar_Group_full.py` is never read).
        solver: the in-graph solver, `"active_set"`, `"pgd"` or `"frank_wolfe"`
            (see `keras_longtail.gbg.min_norm_weights`). Defaults to
            `"active_set"`: exact on the problems the official code's projected
            gradient (MGDA's `MinNormSolver.find_min_norm_element`) approximates
            (`benchmarks/results/gbg_equivalence.md`).
        max_iterations: iteration bound of the solver. Defaults to `250`, the
            `MAX_ITER` of MGDA's `MinNormSolver`.
        tolerance: relative duality-gap tolerance at which the solver stops.
            Defaults to `1e-6` (ours; the official solver instead stops when its
            iterate moves by less than `STOP_CRIT = 1e-5`).

    Example:

    >>> from keras_longtail.gbg import ClassGrouping
    >>> config = GBGConfig(ClassGrouping([0, 1, 1]))
    >>> config.normalization, config.solver, config.max_iterations, config.tolerance
    ('loss+', 'active_set', 250, 1e-06)
    >>> GBGConfig.from_config(config.get_config()) == config
    True
    >>> config.replace(normalization="l2").normalization
    'l2'

    References:
        Li et al., "Long-Tailed Learning as Multi-Objective Optimization", AAAI 2024,
        https://arxiv.org/abs/2310.20490 (Eq. 11-12); official code
        https://github.com/WickyLee1998/GBG_v1.
        Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization",
        NeurIPS 2018, https://arxiv.org/abs/1810.04650.
    """

    def __init__(self, grouping=None, normalization="loss+", solver="active_set", max_iterations=250,
                 tolerance=1e-6):
        self._grouping = None if grouping is None else as_grouping(grouping)
        _validation.check_choice("normalization", normalization, _min_norm.NORMALIZATIONS)
        _validation.check_choice("solver", solver, _min_norm.STEP_SOLVERS)
        self._normalization = normalization
        self._solver = solver
        self._max_iterations = _validation.check_int("max_iterations", max_iterations, minimum=1)
        self._tolerance = _validation.check_float("tolerance", tolerance, minimum=0.0)

    @classmethod
    def from_arguments(cls, grouping=None, **settings):
        """A config from constructor arguments where `None` means "the default" (as `GBGModel` takes them)."""
        return cls(grouping, **{key: value for key, value in settings.items() if value is not None})

    grouping = property(lambda self: self._grouping, doc="The `ClassGrouping`, or `None`.")
    normalization = property(lambda self: self._normalization, doc="The gradient normalizer c_g.")
    solver = property(lambda self: self._solver, doc="The in-graph min-norm solver.")
    max_iterations = property(lambda self: self._max_iterations, doc="The solver's iteration bound.")
    tolerance = property(lambda self: self._tolerance, doc="The solver's relative duality-gap tolerance.")

    def solver_settings(self):
        """`normalization`, `solver`, `max_iterations` and `tolerance` as a dict (the solver's keyword arguments)."""
        return {key: getattr(self, key) for key in SOLVER_SETTINGS}

    def replace(self, **changes):
        """A copy with `changes` (keyword arguments of the constructor) applied."""
        unknown = sorted(set(changes) - {"grouping", *SOLVER_SETTINGS})
        if unknown:
            raise TypeError(f"GBGConfig has no setting {unknown}. Received: {changes}")
        return GBGConfig(**{"grouping": self.grouping, **self.solver_settings(), **changes})

    def differences(self, other):
        """The settings on which `other` differs, as {name: (mine, theirs)}; a `None` grouping differs from none."""
        differences = {}
        for key in ("grouping",) + SOLVER_SETTINGS:
            mine, theirs = getattr(self, key), getattr(other, key)
            if key == "grouping" and (mine is None or theirs is None):
                continue
            if mine != theirs:
                differences[key] = (mine, theirs)
        return differences

    def get_config(self):
        return {"grouping": None if self.grouping is None else self.grouping.get_config(), **self.solver_settings()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return (isinstance(other, GBGConfig) and self.grouping == other.grouping
                and self.solver_settings() == other.solver_settings())

    def __repr__(self):
        settings = ", ".join(f"{key}={value!r}" for key, value in self.solver_settings().items())
        return f"GBGConfig(grouping={self.grouping!r}, {settings})"


def describe(value):
    """A setting as it reads in an error message."""
    return value.get_config() if isinstance(value, ClassGrouping) else repr(value)
