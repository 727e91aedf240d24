"""Procedural road scenes with known depth and sparse LiDAR-like ground truth."""

import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail.data import _depth_scene


def synthetic_depth_scenes(num_scenes=512, image_size=(192, 480), far_probability=0.15, row_spacing=3,
                           max_range=80.0, seed=0):
    """A small monocular-depth data set whose far distances are rare, as in Waymo.

    Each scene is rendered from a pinhole camera 1.6 m above a flat road (50°
    horizontal field of view): the road, a row of buildings closing the road at a
    distance D_back, and 1-4 box-shaped vehicles at 6-35 m. In a fraction
    `far_probability` of the scenes the buildings stand at 60-95 m (the rare
    far-range region, the only source of depths beyond 45 m besides the road
    just below the horizon); otherwise at 22-45 m. Depth is measured along the
    optical axis (road row v: f·h/(v − v_horizon)). Colours fade towards the sky
    with distance and textures have fixed sizes in metres, so depth is visible in
    the image. The ground truth is LiDAR-like: every `row_spacing`-th row, each
    pixel kept with probability 0.75·(1 − 0.6·d/max_range), nothing in the sky or
    beyond `max_range`. With the defaults about 19% of the pixels have ground
    truth, of which ~44% are < 20 m, ~44% 20-40 m, ~9% 40-60 m and ~2% > 60 m.

    Scene i depends only on `(seed, i)`; scenes are rendered on the fly (numpy,
    ~20 ms for 192×480) inside the `tf.data` pipeline, so no memory is held.

    Args:
        num_scenes: number of scenes, >= 1. Defaults to 512.
        image_size: `(height, width)`, each >= 8. Defaults to `(192, 480)`.
        far_probability: probability of a far (60-95 m) scene, in [0, 1].
            Defaults to 0.15.
        row_spacing: LiDAR scanline spacing in rows, >= 1. Defaults to 3.
        max_range: LiDAR range in metres, > 0. Defaults to 80.
        seed: integer seed. Defaults to 0.

    Returns:
        A `tf.data.Dataset` of `(image, depth)`: image float32 `(H, W, 3)` in
        [0, 1], depth float32 `(H, W, 1)` in metres, 0 where there is no ground
        truth (the layout of `load_waymo_depth`). Not batched.

    Example:

    >>> scenes = synthetic_depth_scenes(num_scenes=2, image_size=(32, 80))
    >>> image, depth = next(iter(scenes))
    >>> image.shape, depth.shape
    (TensorShape([32, 80, 3]), TensorShape([32, 80, 1]))
    >>> bool((depth.numpy() > 0).any()), float(depth.numpy().min())
    (True, 0.0)
    """
    _backend.require_tensorflow_backend("synthetic_depth_scenes (it returns a tf.data.Dataset)")
    tf = _backend.import_tensorflow()
    num_scenes = _validation.check_int("num_scenes", num_scenes, minimum=1)
    try:
        height, width = image_size
    except (TypeError, ValueError):
        raise ValueError(f"Expected `image_size` to be (height, width). Received: image_size={image_size!r}") from None
    height = _validation.check_int("image_size", height, minimum=8)
    width = _validation.check_int("image_size", width, minimum=8)
    far_probability = _validation.check_float("far_probability", far_probability, minimum=0.0, maximum=1.0)
    row_spacing = _validation.check_int("row_spacing", row_spacing, minimum=1)
    max_range = _validation.check_float("max_range", max_range, minimum=0.0, min_inclusive=False)
    seed = _validation.check_int("seed", seed, minimum=0)

    def render(index):
        rng = np.random.default_rng([seed, int(index)])
        image, depth = _depth_scene.render_scene(rng, height, width, far_probability, row_spacing, max_range)
        return image, depth[..., None]

    def load(index):
        image, depth = tf.numpy_function(render, [index], (tf.float32, tf.float32), stateful=False)
        image.set_shape((height, width, 3))
        depth.set_shape((height, width, 1))
        return image, depth

    return tf.data.Dataset.range(num_scenes).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
