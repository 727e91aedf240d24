"""keras_longtail: long-tailed learning methods as drop-in Keras 3 primitives.

Namespaces follow Keras: `keras_longtail.data`, `keras_longtail.losses`,
`keras_longtail.layers`, `keras_longtail.callbacks`, `keras_longtail.metrics`,
`keras_longtail.models`, `keras_longtail.ops` (the min-norm solver), `keras_longtail.optimizers` (`GBGOptimizer`), `keras_longtail.training` (train-step
mixins and pipelines), `keras_longtail.distribute` (`model.fit` across workers), and per-method helpers in `keras_longtail.gbg` and `keras_longtail.dual_phase`. The command line is `keras-longtail` (or
`python -m keras_longtail`).
"""

__version__ = "0.1.0"

from keras_longtail import callbacks
from keras_longtail import constraints
from keras_longtail import data
from keras_longtail import distribute
from keras_longtail import dual_phase
from keras_longtail import gbg
from keras_longtail import layers
from keras_longtail import losses
from keras_longtail import metrics
from keras_longtail import models
from keras_longtail import ops
from keras_longtail import optimizers
from keras_longtail import training

__all__ = ["callbacks", "constraints", "data", "distribute", "dual_phase", "gbg", "layers", "losses", "metrics", "models", "ops", "optimizers", "training",
           "__version__"]
