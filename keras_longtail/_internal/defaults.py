"""Method defaults that code without Keras needs too (the command line parses its flags before importing Keras).

Each value is stated here once; the method's own code and the command line import it, and the method's
public namespace re-exports it (e.g. `keras_longtail.gradtail.GRADTAIL_MAX_WEIGHT`) for benchmarks and
users. Plain Python only: importing this module must not import Keras or TensorFlow (tests/test_cli.py checks `--help`).
"""

GRADTAIL_MAX_WEIGHT = 3.0
"""GradTail's maximum weight M (the weight at the pivot) by default: the paper's value for ImageNet-LT
(Chen et al., arXiv:2201.05938). `GradTailSigmoid(max_weight=...)` defaults to it."""

GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT = 15.0
"""GradTail's maximum weight M in the paper's toy example and its depth model (§4.3): what
`gradtail_depth(max_weight=...)` and `keras-longtail train --task depth` default to."""

GRADTAIL_DEPTH_PIVOT = -0.5
"""GradTail's pivot p for depth: the paper's best in its Table 2 (§4.3). `gradtail_depth(pivot=...)` and
`keras-longtail train --task depth` default to it (classification's pivot is 0)."""
