"""The method registry: every training method of `run_training`, registered once with its defaults.

A `Method` names a method (`--method NAME` on the command line), says in a few words what it
trains, lists the `run_training` keyword arguments it owns with their defaults, and holds the
recipe that trains it. The command line takes its `--method` choices and their help from here,
`run_training` its dispatch and defaults, and the benchmarks their method list.

Importing this module imports neither Keras nor TensorFlow (the command line reads the registry
before it parses its arguments); a method's `train` imports them when it runs.
"""

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class Method:
    """One training method of `run_training` and its defaults.

    Args:
        name: the method's name, as in `run_training(method=name)` and `keras-longtail train --method name`.
        description: a few words on what it trains, shown by `keras-longtail train --help`
            (e.g. `"GALALoss"`).
        defaults: the `run_training` keyword arguments this method owns, with their defaults
            (e.g. `{"gala_accumulation": "paper"}`); every default of the method is stated here and
            nowhere else.
        train: `train(job, options)`, the recipe: trains `job.network` (a `run_training` job; its
            `fit(...)` is the shared compile-and-fit) and returns the trained network, recording
            extra results in `job.extra`. `options` holds the method's `defaults` updated with the
            caller's values.
        check: optional `check(options)`, called before any data is loaded; raises `ValueError`
            for a bad option.
        results: optional `results(options)`, a dict of the options recorded in the results
            right after the accuracies (e.g. `{"gala_accumulation": "paper"}`).
        exclusive: options that only this method accepts: passing one of them (not `None`) with
            another method is an error.

    Example:

    ```python
    from keras_longtail import recipes

    def train_ce_twice(job, options):
        job.fit(job.network, label="ce")
        return job.fit(job.network, label="ce again")

    method = recipes.Method("ce-twice", "CE, fitted twice", defaults={}, train=train_ce_twice)
    method.defaults  # {} (read-only); recipes.register_method(method) adds it to the registry
    ```
    """

    name: str
    description: str
    defaults: "Mapping[str, object]"
    train: "Callable[[Job, dict], keras.Model]"
    check: "Callable[[dict], None] | None" = None
    results: "Callable[[dict], dict] | None" = None
    exclusive: tuple = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Expected `name` to be a non-empty string. Received: name={self.name!r}")
        if not callable(self.train):
            raise ValueError(f"Expected `train` to be callable. Received: train={self.train!r}")
        unowned = [name for name in self.exclusive if name not in self.defaults]
        if unowned:
            raise ValueError(f"Expected every `exclusive` option among the method's `defaults` "
                             f"{sorted(self.defaults)}. Received: exclusive={list(self.exclusive)}")
        object.__setattr__(self, "defaults", types.MappingProxyType(dict(self.defaults)))
        object.__setattr__(self, "exclusive", tuple(self.exclusive))


# name -> Method, in registration order (the order of `--method`'s choices).
METHODS = {}


def register_method(method):
    """Adds `method` (a `Method`) to the registry and returns it.

    Its options must not be owned by an already registered method with a different default
    (`run_training` takes every method's options as keyword arguments).

    Example:

    ```python
    from keras_longtail import recipes

    recipes.register_method(recipes.Method("ce-again", "cross-entropy, registered again", defaults={},
                                           train=recipes.get_method("ce").train))
    ```
    """
    if not isinstance(method, Method):
        raise ValueError(f"Expected a `keras_longtail.recipes.Method`. Received: method={method!r}")
    if method.name in METHODS:
        raise ValueError(f"Expected a method name not registered yet (registered: {list(METHODS)}). "
                         f"Received: name={method.name!r}")
    for other in METHODS.values():
        for option, default in method.defaults.items():
            if option in other.defaults and other.defaults[option] != default:
                raise ValueError(f"Expected option {option!r} to keep the default it has for method "
                                 f"{other.name!r} ({other.defaults[option]!r}). Received: {option}={default!r}")
    METHODS[method.name] = method
    return method


def get_method(name):
    """The registered `Method` called `name`; a `ValueError` names the registered ones otherwise.

    Example:

    ```python
    from keras_longtail import recipes

    recipes.get_method("gala").defaults["gala_accumulation"]  # "paper"
    ```
    """
    if name not in METHODS:
        raise ValueError(f"Expected `method` in {list(METHODS)}. Received: method={name!r}")
    return METHODS[name]


def method_options():
    """{option: default} over every registered method (the method keyword arguments of `run_training`).

    Example:

    ```python
    from keras_longtail import recipes

    recipes.method_options()["num_groups"]  # 4, GBG's
    ```
    """
    options = {}
    for method in METHODS.values():
        options.update(method.defaults)
    return options
