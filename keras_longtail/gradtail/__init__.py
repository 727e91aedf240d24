"""GradTail: gradient-agreement sample weighting for long-tailed data (TensorFlow backend).

GradTail (Chen et al., "GradTail: Learning Long-Tailed Data Using Gradient-based
Sample Weighting", arXiv:2201.05938, 2022) up-weights, during training, the
examples whose gradient disagrees with the running mean gradient: for the
per-example gradient ∇_i of the selected weights, the cosine
θ_i = ⟨∇_i, w̃⟩ / (‖∇_i‖·‖w̃‖) with the running mean gradient w̃ is normalized by
its running scale σ, and the example's loss is weighted by
q_i = f(|θ_i/σ − p|), an increasing activation f (`GradTailSigmoid`) of the
distance to the pivot p. The weights are recomputed at every step, without
class labels, so the method also applies to dense regression (depth) through
pseudo-examples (`PatchStrategy`, `RandomPatches`, `gradtail_depth`).

- `GradTailModel` (a functional model) and `GradTailMixin` (any `keras.Model`)
  replace the train step with the paper's Algorithm 1.
- `GradTailSigmoid` (the paper's activation), `GradTailActivation` (its base).
- `gradtail_scores` gives θ (and q) per example; `GradTailWeightLogger` logs the
  weights' histogram per epoch.
- `gradtail_depth` wraps a depth network as in the paper's §4.3.

Every name is also exported by `keras_longtail.training`. The paper's values are
constants here: `GRADTAIL_MAX_WEIGHT` (3.0, ImageNet-LT; the default of
`GradTailSigmoid`), `GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT` (15.0, the toy example
and depth; the default of `gradtail_depth`) and `GRADTAIL_DEPTH_PIVOT` (-0.5, the
depth pivot of the paper's Table 2).
"""

from keras_longtail._internal.defaults import GRADTAIL_DEPTH_PIVOT
from keras_longtail._internal.defaults import GRADTAIL_MAX_WEIGHT
from keras_longtail._internal.defaults import GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT

from keras_longtail.gradtail.gradtail_activation import GradTailActivation
from keras_longtail.gradtail.gradtail_depth import gradtail_depth
from keras_longtail.gradtail.gradtail_mixin import GradTailMixin
from keras_longtail.gradtail.gradtail_model import GradTailModel
from keras_longtail.gradtail.gradtail_scores import gradtail_scores
from keras_longtail.gradtail.gradtail_sigmoid import GradTailSigmoid
from keras_longtail.gradtail.gradtail_weight_logger import GradTailWeightLogger
from keras_longtail.gradtail.patch_strategy import PatchStrategy
from keras_longtail.gradtail.random_patches import RandomPatches

__all__ = [
    "GradTailActivation",
    "GradTailMixin",
    "GradTailModel",
    "GradTailSigmoid",
    "GradTailWeightLogger",
    "PatchStrategy",
    "RandomPatches",
    "gradtail_depth",
    "gradtail_scores",
]
