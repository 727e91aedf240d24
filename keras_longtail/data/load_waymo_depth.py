"""Monocular depth from the Waymo Open Dataset v2 (camera images + LiDAR depth)."""

import os

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail.data import _waymo_v2

DEPTH_TYPES = ("range", "z")
SPLITS = ("training", "validation", "testing")


def load_waymo_depth(data_dir, split="training", image_size=(192, 480), camera="FRONT", depth_type="range",
                     motion_compensation=True, segments=None):
    """Camera images with sparse per-pixel LiDAR depth from Waymo Open Dataset v2 Parquet files.

    The GradTail depth task (§4.3, App. B.3): camera images resized to
    192×480 paired with metric depth from the synchronized LiDAR points projected
    into the same camera. For every frame of every segment of `split`:

    1. each LiDAR's first-return range image becomes points in the vehicle frame
       (beam inclinations and azimuths from the LiDAR calibration; per-point motion
       compensation when the optional `lidar_pose` and `vehicle_pose` components are
       present and `motion_compensation` is true);
    2. the points the `lidar_camera_projection` component assigns to `camera`
       land on pixel (⌊y·H/height⌋, ⌊x·W/width⌋) of the H×W output, with
       (width, height) the camera's calibrated image size;
    3. the depth of a point is its distance to the camera origin
       (`depth_type="range"`, the official `build_camera_depth_image`) or along the
       optical axis (`depth_type="z"`); where several points land on one pixel the
       nearest is kept; pixels without a point are 0.

    Files: `<data_dir>/<split>/<component>/<segment>.parquet` for the components
    camera_image, camera_calibration, lidar, lidar_calibration and
    lidar_camera_projection (lidar_pose, vehicle_pose optional), as downloaded
    from the v2 release. Segments are read one at a time: the chosen camera's
    JPEGs of the segment (~200 frames) at once, the LiDAR components frame by
    frame (pyarrow row filters), so memory stays near one segment's images.

    v1 TFRecord `Frame` files: the official `waymo-open-dataset-tf-2-12-0` package
    (Python 3.10/3.11, TensorFlow 2.12/2.13, not installable beside this toolkit's
    TensorFlow) converts them to this layout in a separate environment; see
    `scripts/waymo_v1_to_v2.py`.

    Args:
        data_dir: folder holding the split folders (`training/`, `validation/`, ...).
        split: split folder name. Defaults to `"training"`.
        image_size: output `(height, width)`. Defaults to `(192, 480)`.
        camera: `"FRONT"`, `"FRONT_LEFT"`, `"FRONT_RIGHT"`, `"SIDE_LEFT"` or
            `"SIDE_RIGHT"`. Defaults to `"FRONT"`.
        depth_type: `"range"` (distance to the camera) or `"z"` (depth along the
            optical axis). Defaults to `"range"`.
        motion_compensation: use the per-point LiDAR poses when present.
            Defaults to `True`.
        segments: optional list of segment context names to read (default: all,
            sorted by name).

    Returns:
        A `tf.data.Dataset` of `(image, depth)`: image float32 `(H, W, 3)` in
        [0, 1], depth float32 `(H, W, 1)` in metres with 0 where there is no ground
        truth (the convention of `keras_longtail.losses.MaskedL1` and
        `keras_longtail.metrics.BinnedMeanRelativeError`). Not batched, not shuffled.

    Raises:
        ImportError: pyarrow is missing (`pip install "keras-longtail[waymo]"`).
        FileNotFoundError: the split folder, or some segment's component files, are
            missing (the message lists them).

    Example:

    ```python
    train = load_waymo_depth("/data/waymo_v2", split="training")
    train = train.shuffle(512).batch(10)
    model.fit(train, ...)
    ```

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using Gradient-based
          Sample Weighting", arXiv:2201.05938.
        - Sun et al., "Scalability in Perception for Autonomous Driving: Waymo Open
          Dataset", CVPR 2020.
    """
    _backend.require_tensorflow_backend("load_waymo_depth (it returns a tf.data.Dataset)")
    tf = _backend.import_tensorflow()
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"Expected `data_dir` to be a path. Received: data_dir={data_dir!r}")
    if not isinstance(split, str) or not split or os.sep in split:
        raise ValueError(f"Expected `split` to be a folder name such as {list(SPLITS)}. Received: split={split!r}")
    height, width = _check_image_size(image_size)
    camera = _validation.check_choice("camera", camera, _waymo_v2.CAMERA_NAMES)
    depth_type = _validation.check_choice("depth_type", depth_type, DEPTH_TYPES)
    _waymo_v2.import_parquet()  # a clear ImportError before any file is touched
    found = _waymo_v2.segment_files(os.path.join(os.fspath(data_dir), split))
    if segments is not None:
        if isinstance(segments, str):
            segments = [segments]
        unknown = [s for s in segments if s not in found]
        if unknown:
            raise ValueError(f"Expected `segments` among the {len(found)} segments of {split!r}. "
                             f"Received unknown names: {unknown}")
        found = {s: found[s] for s in segments}
    camera_id = _waymo_v2.CAMERA_NAMES[camera]
    motion_compensation = bool(motion_compensation)

    def generate():
        for files in found.values():
            for _, jpeg, depth in _waymo_v2.frames(files, camera_id, (height, width), depth_type,
                                                   motion_compensation):
                yield jpeg, depth[..., None]

    def decode(jpeg, depth):
        image = tf.image.decode_jpeg(jpeg, channels=3)
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, (height, width), antialias=True)
        return tf.clip_by_value(image, 0.0, 1.0), depth

    dataset = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec((), tf.string), tf.TensorSpec((height, width, 1), tf.float32)))
    return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def _check_image_size(image_size):
    try:
        height, width = image_size
    except (TypeError, ValueError):
        raise ValueError(f"Expected `image_size` to be (height, width). Received: image_size={image_size!r}") from None
    _validation.check_int("image_size", height, minimum=1)
    _validation.check_int("image_size", width, minimum=1)
    return int(height), int(width)
