"""Gradient-balancing grouping (GBG): classes grouped by the similarity of their gradients.

`group_classes` runs GBG's Algorithm 1 on a model; `group_by_similarity` is its
second half on given per-class gradients; `ClassGrouping` holds the result. The
training half (one loss per group, MGDA min-norm weights) is
`keras_longtail.training.GBGModel`, and the sampler that keeps every group in
every batch is `keras_longtail.data.group_aware_completion`.
"""

from keras_longtail.gbg.class_grouping import ClassGrouping
from keras_longtail.gbg.group_by_similarity import group_by_similarity
from keras_longtail.gbg.group_classes import group_classes

__all__ = ["ClassGrouping", "group_by_similarity", "group_classes"]
