"""Experiment recipes: the place where each experiment default is stated once.

`run_training` (long-tailed classification) and `run_depth_training` (monocular depth)
are the jobs behind `keras-longtail train`; the command line (`keras_longtail.cli`) is a
thin argparse shell over them, and the benchmarks (`benchmarks/run.py` and the cost
benchmarks) take their methods and defaults from here too.

- `METHODS`: the method registry, name -> `Method` (ce, gala, gradtail, gbg, async, wb),
  each registered once with its description, its options and their defaults, and its
  recipe. `get_method(name)` looks one up; `register_method(Method(...))` adds one;
  `method_options()` lists every method's options with their defaults. A recipe gets the
  run's `Job` (data, network, optimizer, the shared compile-and-fit) and its options.
- `defaults`: what every method shares: the data sets (`DATASETS`), the optimizer and
  schedule (`WEIGHT_DECAY`, `WARMUP_FRACTION`, `ldam_schedule`), the network
  (`RESNET_BATCH_NORM_MOMENTUM`) and the input pipeline (`training_pipeline`).

Importing this package imports neither Keras nor TensorFlow; the recipes import them
when they run.

Example:

```python
from keras_longtail import recipes

sorted(recipes.METHODS)  # ['async', 'ce', 'gala', 'gbg', 'gradtail', 'wb']
recipes.get_method("gradtail").defaults["gradtail_max_weight"]  # 3.0
results = recipes.run_training("digits-lt", method="gala", epochs=1, verbose=0)
print(recipes.format_shot_table(results))
```
"""

from keras_longtail.recipes import methods as _methods  # registers the toolkit's methods
from keras_longtail.recipes.defaults import DATASETS
from keras_longtail.recipes.defaults import DEPTH_DATASETS
from keras_longtail.recipes.defaults import DEPTH_METHODS
from keras_longtail.recipes.defaults import RESNET_BATCH_NORM_MOMENTUM
from keras_longtail.recipes.defaults import TASKS
from keras_longtail.recipes.defaults import WARMUP_FRACTION
from keras_longtail.recipes.defaults import WEIGHT_DECAY
from keras_longtail.recipes.evaluation import evaluate
from keras_longtail.recipes.evaluation import format_depth_table
from keras_longtail.recipes.evaluation import format_shot_table
from keras_longtail.recipes.methods import GALA_ACCUMULATIONS
from keras_longtail.recipes.methods import GBG_GROUP_LOSSES
from keras_longtail.recipes.methods import GBG_MODES
from keras_longtail.recipes.methods import GBG_NORMALIZATIONS
from keras_longtail.recipes.methods import GBG_SAMPLERS
from keras_longtail.recipes.methods import GBG_WEIGHTINGS
from keras_longtail.recipes.methods import GRADTAIL_LAYERS
from keras_longtail.recipes.pipeline import crop_and_flip
from keras_longtail.recipes.pipeline import ldam_schedule
from keras_longtail.recipes.pipeline import training_pipeline
from keras_longtail.recipes.progress import Progress
from keras_longtail.recipes.registry import METHODS
from keras_longtail.recipes.registry import Method
from keras_longtail.recipes.registry import get_method
from keras_longtail.recipes.registry import method_options
from keras_longtail.recipes.registry import register_method
from keras_longtail.recipes.run_depth_training import run_depth_training
from keras_longtail.recipes.run_training import Job
from keras_longtail.recipes.run_training import run_training
