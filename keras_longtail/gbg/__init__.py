"""GBG: long-tailed learning as multi-objective optimization, with gradient-balancing grouping.

The method (Li et al., "Long-Tailed Learning as Multi-Objective Optimization",
AAAI 2024, https://arxiv.org/abs/2310.20490) treats each group of classes as one
objective of a multi-objective problem:

1. **Grouping (Algorithm 1)**, once before training: `group_classes` averages
   per-class gradients on the (initialized) model and cuts their cosine-similarity
   graph into groups by spectral clustering; `group_by_similarity` is its second
   half on given gradients; `ClassGrouping` holds the result.
2. **The step (Algorithm 2, Eq. 10-12)**: one loss L_g per group present in the
   batch, their gradients, the MGDA min-norm weights

       alpha = argmin_{alpha in simplex} || sum_g alpha_g grad L_g / c_g ||^2

   (`min_norm_weights`, solved in the graph), and one update along
   d = sum_g alpha_g grad L_g. `GBGModel` (a functional model) and `GBGMixin` (for
   your own model class) run it inside `fit`; `GBGOptimizer` wraps any optimizer
   with the same combination for custom loops; `GBGConfig` holds the grouping
   and the solver settings, with their defaults.
3. **The sampler**: `group_aware_completion` tops up every batch so that each
   group is present (the paper's GAC); `completion_probabilities` are its
   within-group class probabilities.

Defaults follow the official code (github.com/WickyLee1998/GBG_v1), not only the
paper's text: alpha is solved on the backbone's gradients (`mode="backbone"`,
its `get_group_g_grad_on_backbone`), with the `"loss+"` normalizer
c_g = L_g ||grad L_g|| (its `get_MGDA_weights` hard-codes it), every step, on 4
groups cut with `assign_labels="cluster_qr"`. Our solver (`"active_set"`,
relative duality gap 1e-6) reaches the exact min-norm point the code's projected
gradient approximates (`benchmarks/results/gbg_equivalence.md`).

The public namespaces keep their old paths: `keras_longtail.training.GBGModel`
and `GBGMixin`, `keras_longtail.optimizers.GBGOptimizer`,
`keras_longtail.ops.min_norm_weights` and
`keras_longtail.data.group_aware_completion` are the objects exported here.
"""

from keras_longtail.gbg.class_grouping import ClassGrouping
from keras_longtail.gbg.gbg_config import GBGConfig
from keras_longtail.gbg.gbg_mixin import GBGMixin
from keras_longtail.gbg.gbg_model import GBGModel
from keras_longtail.gbg.gbg_optimizer import GBGOptimizer
from keras_longtail.gbg.group_aware_completion import completion_probabilities
from keras_longtail.gbg.group_aware_completion import group_aware_completion
from keras_longtail.gbg.group_by_similarity import group_by_similarity
from keras_longtail.gbg.group_classes import group_classes
from keras_longtail.gbg.min_norm_weights import min_norm_weights

__all__ = [
    "ClassGrouping",
    "GBGConfig",
    "GBGMixin",
    "GBGModel",
    "GBGOptimizer",
    "completion_probabilities",
    "group_aware_completion",
    "group_by_similarity",
    "group_classes",
    "min_norm_weights",
]
