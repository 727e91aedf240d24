"""Adds the ground-truth mask of depth maps as a per-pixel sample weight."""

from keras_longtail._internal import backend as _backend


def with_ground_truth_mask(dataset):
    """Maps `(image, depth)` elements to `(image, depth, mask)`, mask = [depth > 0] as float32.

    Depth maps hold 0 (or any value <= 0, or NaN) where there is no ground truth
    (`load_waymo_depth`, `synthetic_depth_scenes`). Per-pixel losses such as
    `keras.losses.MeanAbsoluteError` then count only pixels with ground truth
    when the mask is their `sample_weight`, which is how `GradTailModel`
    receives it for dense outputs (`keras_longtail.training.gradtail_depth`).
    Works on batched or unbatched datasets (the mask has the depth's shape).

    Args:
        dataset: a `tf.data.Dataset` of `(image, depth)` pairs.

    Returns:
        A `tf.data.Dataset` of `(image, depth, mask)`.

    Example:

    >>> from keras_longtail import data
    >>> scenes = data.with_ground_truth_mask(data.synthetic_depth_scenes(1, image_size=(32, 80)))
    >>> image, depth, mask = next(iter(scenes))
    >>> bool(((mask.numpy() == 1) == (depth.numpy() > 0)).all()), mask.dtype.name
    (True, 'float32')

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using Gradient-based
          Sample Weighting", arXiv:2201.05938 (App. B.3: ℓ1 on pixels with ground truth).
    """
    tf = _backend.import_tensorflow()
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"Expected `dataset` to be a tf.data.Dataset of (image, depth). Received: {dataset!r}")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"Expected `dataset` elements to be (image, depth) pairs. Received element_spec={spec}")

    def add_mask(image, depth):
        return image, depth, tf.cast(depth > 0, tf.float32)

    return dataset.map(add_mask)
