"""Cross-replica helpers for statistics computed inside a `tf.distribute` train step."""

import contextlib

from keras_longtail._internal import backend as _backend


def num_replicas():
    """Replicas in sync in the current replica context (1 outside `tf.distribute`)."""
    tf = _backend.import_tensorflow()
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def cross_replica_sum(value):
    """Sum of `value` over the replicas of a `tf.distribute` strategy (identity on one replica)."""
    tf = _backend.import_tensorflow()
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        # Cross-replica context (an eager call under `strategy.scope()`) or one replica:
        # the value already covers the whole batch.
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def model_scope(model):
    """The scope to create `model`'s variables in: its strategy's, unless a strategy scope is active already."""
    tf = _backend.import_tensorflow()
    return contextlib.nullcontext() if tf.distribute.has_strategy() else model.distribute_strategy.scope()
