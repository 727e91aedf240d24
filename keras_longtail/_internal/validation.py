"""Argument checks shared across the toolkit.

Every check raises `ValueError`/`TypeError` naming the argument, what was
expected and the value received (the Keras convention).
"""

import math
import numbers

import numpy as np


def check_int(name, value, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"Expected `{name}` to be an integer. Received: {name}={value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"Expected `{name}` >= {minimum}. Received: {name}={value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"Expected `{name}` <= {maximum}. Received: {name}={value}")
    return value


def check_float(name, value, minimum=None, maximum=None, min_inclusive=True, max_inclusive=True):
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"Expected `{name}` to be a number. Received: {name}={value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"Expected `{name}` to be finite. Received: {name}={value}")
    if minimum is not None:
        bad = value < minimum if min_inclusive else value <= minimum
        if bad:
            op = ">=" if min_inclusive else ">"
            raise ValueError(f"Expected `{name}` {op} {minimum}. Received: {name}={value}")
    if maximum is not None:
        bad = value > maximum if max_inclusive else value >= maximum
        if bad:
            op = "<=" if max_inclusive else "<"
            raise ValueError(f"Expected `{name}` {op} {maximum}. Received: {name}={value}")
    return value


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Expected `{name}` to be True or False. Received: {name}={value!r}")
    return bool(value)


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {sorted(choices)}. Received: {name}={value!r}")
    return value


def check_class_counts(name, counts, allow_zero=True, min_classes=2):
    """Returns `counts` as a list of Python ints after checking it."""
    if isinstance(counts, (str, bytes)) or not hasattr(counts, "__len__"):
        raise TypeError(
            f"Expected `{name}` to be a sequence of per-class counts. Received: {name}={counts!r}"
        )
    array = np.asarray(counts)
    if array.ndim != 1:
        raise ValueError(f"Expected `{name}` to be one-dimensional. Received shape {array.shape}: {name}={counts!r}")
    if array.size < min_classes:
        raise ValueError(
            f"Expected `{name}` to have at least {min_classes} classes. Received {array.size}: {name}={counts!r}"
        )
    if not np.issubdtype(array.dtype, np.number) or np.any(array != np.round(array)):
        raise TypeError(f"Expected `{name}` to hold integers. Received: {name}={counts!r}")
    if np.any(array < 0):
        raise ValueError(f"Expected `{name}` to be non-negative. Received: {name}={counts!r}")
    if not allow_zero and np.any(array == 0):
        raise ValueError(f"Expected every entry of `{name}` to be positive. Received: {name}={counts!r}")
    return [int(c) for c in array]
