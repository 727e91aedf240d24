"""Reading the Waymo Open Dataset v2 (Apache Parquet) and projecting LiDAR depth into a camera.

Written from the published v2 schema of the `waymo-open-dataset` package
(`src/waymo_open_dataset/v2/component.py`, `perception/base.py`, `camera_image.py`,
`lidar.py`, `context.py`, `pose.py`, `column_types.py`) and its range-image
geometry (`src/waymo_open_dataset/utils/range_image_utils.py`:
`compute_inclination`, `compute_range_image_polar`, `compute_range_image_cartesian`,
`build_camera_depth_image`; `utils/transform_utils.get_rotation_matrix`), without
importing that package (its wheels pin TensorFlow 2.11/2.13, see the README).

Layout: `<data_dir>/<split>/<component>/<segment_context_name>.parquet`, one file per
segment and component. Column names are the flattened dataclass fields
(`component.Component.to_flatten_dict`): keys are `key.<field>`, values
`[<ComponentClass>].<field>.<subfield>`. The columns read here:

- camera_image (`CameraImageComponent`, key: segment, frame timestamp, camera):
  `[CameraImageComponent].image` (JPEG bytes).
- camera_calibration (`CameraCalibrationComponent`, key: segment, camera):
  `[CameraCalibrationComponent].extrinsic.transform` (16 float64, row-major 4x4,
  camera frame -> vehicle frame), `.width`, `.height` (int32, the image size in pixels).
- lidar (`LiDARComponent`, key: segment, frame timestamp, laser):
  `[LiDARComponent].range_image_return1.values` (list<float32>, a flattened
  [H, W, 4] image: range, intensity, elongation, no-label-zone) and `.shape` (3 x int32).
- lidar_calibration (`LiDARCalibrationComponent`, key: segment, laser):
  `[LiDARCalibrationComponent].extrinsic.transform` (LiDAR frame -> vehicle frame),
  `.beam_inclination.min`, `.max` (radians) and `.values` (null, or one inclination
  per range-image row, ascending).
- lidar_camera_projection (`LiDARCameraProjectionComponent`, key as lidar):
  `[LiDARCameraProjectionComponent].range_image_return1.values` / `.shape`: a
  flattened [H, W, 6] image (camera of the 1st projection, x along the width,
  y along the height, then the same for a 2nd projection; camera 0 = none;
  pixel coordinate 0 is the left/top edge of the first pixel).
- optional lidar_pose (`LiDARPoseComponent`): `[LiDARPoseComponent].range_image_return1.values`
  / `.shape`, a flattened [H, W, 6] image (roll, pitch, yaw, x, y, z: vehicle ->
  world at each point's capture time; TOP LiDAR only) and vehicle_pose
  (`VehiclePoseComponent`, key: segment, frame timestamp):
  `[VehiclePoseComponent].world_from_vehicle.transform`. When both are present the
  points are motion-compensated to the vehicle frame at the frame timestamp, as
  the official `convert_range_image_to_cartesian(pixel_pose=..., frame_pose=...)`.

Everything here is numpy on the host (data preparation, not a training step).
"""

import os

import numpy as np

REQUIRED_COMPONENTS = ("camera_image", "camera_calibration", "lidar", "lidar_calibration",
                       "lidar_camera_projection")
POSE_COMPONENTS = ("lidar_pose", "vehicle_pose")
CAMERA_NAMES = {"FRONT": 1, "FRONT_LEFT": 2, "FRONT_RIGHT": 3, "SIDE_LEFT": 4, "SIDE_RIGHT": 5}
LASER_NAMES = {"TOP": 1, "FRONT": 2, "SIDE_LEFT": 3, "SIDE_RIGHT": 4, "REAR": 5}

SEGMENT = "key.segment_context_name"
TIMESTAMP = "key.frame_timestamp_micros"
CAMERA = "key.camera_name"
LASER = "key.laser_name"
IMAGE = "[CameraImageComponent].image"
CAMERA_EXTRINSIC = "[CameraCalibrationComponent].extrinsic.transform"
CAMERA_WIDTH = "[CameraCalibrationComponent].width"
CAMERA_HEIGHT = "[CameraCalibrationComponent].height"
LIDAR_VALUES = "[LiDARComponent].range_image_return1.values"
LIDAR_SHAPE = "[LiDARComponent].range_image_return1.shape"
LIDAR_EXTRINSIC = "[LiDARCalibrationComponent].extrinsic.transform"
BEAM_MIN = "[LiDARCalibrationComponent].beam_inclination.min"
BEAM_MAX = "[LiDARCalibrationComponent].beam_inclination.max"
BEAM_VALUES = "[LiDARCalibrationComponent].beam_inclination.values"
PROJECTION_VALUES = "[LiDARCameraProjectionComponent].range_image_return1.values"
PROJECTION_SHAPE = "[LiDARCameraProjectionComponent].range_image_return1.shape"
POSE_VALUES = "[LiDARPoseComponent].range_image_return1.values"
POSE_SHAPE = "[LiDARPoseComponent].range_image_return1.shape"
VEHICLE_POSE = "[VehiclePoseComponent].world_from_vehicle.transform"

PYARROW_HINT = ('Reading the Waymo Open Dataset v2 needs pyarrow: '
                'pip install "keras-longtail[waymo]" (or pip install pyarrow).')


def import_parquet():
    """`pyarrow.parquet`, or an ImportError naming the extra that installs it."""
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ImportError(PYARROW_HINT) from error
    return pq


def segment_files(split_dir):
    """{segment name: {component: path}} for the segments of one split directory.

    Raises FileNotFoundError naming the directory, or, for each segment, the
    required component files that are missing.
    """
    if not os.path.isdir(split_dir):
        raise FileNotFoundError(
            f"No Waymo Open Dataset v2 split directory at {split_dir!r}. Expected "
            f"<data_dir>/<split>/<component>/<segment>.parquet with the components "
            f"{list(REQUIRED_COMPONENTS)}.")
    names = set()
    for component in REQUIRED_COMPONENTS:
        folder = os.path.join(split_dir, component)
        if os.path.isdir(folder):
            names.update(f[: -len(".parquet")] for f in os.listdir(folder) if f.endswith(".parquet"))
    if not names:
        raise FileNotFoundError(
            f"No .parquet files under {split_dir!r}. Expected <component>/<segment>.parquet for the "
            f"components {list(REQUIRED_COMPONENTS)}.")
    segments, missing = {}, []
    for name in sorted(names):
        files = {c: os.path.join(split_dir, c, f"{name}.parquet") for c in REQUIRED_COMPONENTS + POSE_COMPONENTS}
        absent = [os.path.relpath(files[c], split_dir) for c in REQUIRED_COMPONENTS if not os.path.isfile(files[c])]
        missing.extend(absent)
        segments[name] = {c: p for c, p in files.items() if os.path.isfile(p)}
    if missing:
        raise FileNotFoundError(
            f"Waymo Open Dataset v2 component files missing under {split_dir!r}: {missing}. Each segment "
            f"needs {list(REQUIRED_COMPONENTS)} (lidar_pose and vehicle_pose are optional).")
    return segments


def matrix(transform):
    """A flattened row-major 4x4 transform as a float64 (4, 4) array."""
    return np.asarray(transform, dtype=np.float64).reshape(4, 4)


def range_image(values, shape):
    """A flattened range image as a float64 array of the given [H, W, C] shape."""
    return np.asarray(values, dtype=np.float64).reshape([int(s) for s in shape])


def inclinations(height, beam_min, beam_max, beam_values=None):
    """Inclination (radians) of each range-image row, row 0 first (the highest beam).

    `compute_inclination` (uniform: min + (0.5 + i) / H · (max − min)) or the
    calibration's per-row values, then reversed, as `convert_range_image_to_cartesian`.
    """
    if beam_values is not None and len(beam_values) > 0:
        values = np.asarray(beam_values, dtype=np.float64)
        if values.shape != (height,):
            raise ValueError(f"Expected {height} beam inclinations (one per range-image row). "
                             f"Received {values.shape[0]}")
    else:
        values = beam_min + (0.5 + np.arange(height)) / height * (beam_max - beam_min)
    return values[::-1]


def rotation_matrix(roll, pitch, yaw):
    """Rz(yaw) · Ry(pitch) · Rx(roll) (the 3-2-1 convention of `transform_utils.get_rotation_matrix`), [..., 3, 3]."""
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    return np.stack([
        np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], axis=-1),
        np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], axis=-1),
        np.stack([-sp, cp * sr, cp * cr], axis=-1),
    ], axis=-2)


def range_image_to_vehicle(ranges, lidar_extrinsic, inclination, pixel_pose=None, frame_pose=None):
    """Cartesian points (vehicle frame) of a [H, W] range image, as an [H, W, 3] array.

    Column j of W has azimuth (2·(W − j − 0.5)/W − 1)·π − atan2(E[1,0], E[0,0]) in
    the LiDAR frame (E the LiDAR extrinsic), so a column always looks the same way
    in the vehicle frame; row i has inclination θ_i. The point
    r·(cos az cos θ, sin az cos θ, sin θ) is moved to the vehicle frame by E. With
    a per-pixel pose [H, W, 6] (roll, pitch, yaw, x, y, z) and the frame pose
    (world_from_vehicle, 4x4), it goes to the world at its capture time and back
    to the vehicle frame of the frame timestamp.
    """
    height, width = ranges.shape
    az_correction = np.arctan2(lidar_extrinsic[1, 0], lidar_extrinsic[0, 0])
    ratios = (np.arange(width, 0, -1) - 0.5) / width
    azimuth = (ratios * 2.0 - 1.0) * np.pi - az_correction
    azimuth, incl = np.meshgrid(azimuth, inclination)  # both [H, W]
    points = np.stack([np.cos(azimuth) * np.cos(incl) * ranges,
                       np.sin(azimuth) * np.cos(incl) * ranges,
                       np.sin(incl) * ranges], axis=-1)
    points = points @ lidar_extrinsic[:3, :3].T + lidar_extrinsic[:3, 3]
    if pixel_pose is not None and frame_pose is not None:
        rotation = rotation_matrix(pixel_pose[..., 0], pixel_pose[..., 1], pixel_pose[..., 2])
        points = np.einsum("hwij,hwj->hwi", rotation, points) + pixel_pose[..., 3:6]
        vehicle_from_world = np.linalg.inv(frame_pose)
        points = points @ vehicle_from_world[:3, :3].T + vehicle_from_world[:3, 3]
    return points


def camera_points(points, valid, projection, camera_id):
    """(points [N, 3], pixel x [N], pixel y [N]) of the valid points projected into `camera_id`.

    The first of the two projections that names the camera is used (as
    `build_camera_depth_image`).
    """
    first = projection[..., 0] == camera_id
    second = (projection[..., 3] == camera_id) & ~first
    x = np.where(first, projection[..., 1], projection[..., 4])
    y = np.where(first, projection[..., 2], projection[..., 5])
    selected = (first | second) & valid
    return points[selected], x[selected], y[selected]


def depth_image(points, pixel_x, pixel_y, camera_extrinsic, camera_size, output_size, depth_type):
    """A float32 [H_out, W_out] depth map, 0 where no point lands; the nearest point wins.

    Points (vehicle frame) go to the camera frame (x forward, y left, z up) with the
    inverse of the camera extrinsic; depth is the distance to the camera origin
    (`depth_type="range"`, as `build_camera_depth_image`) or the distance along the
    optical axis, x_cam (`depth_type="z"`). Pixel coordinates given for the
    calibration's image size (width, height) are scaled to the output size:
    column ⌊x · W_out / width⌋, row ⌊y · H_out / height⌋.
    """
    out_height, out_width = output_size
    width, height = camera_size
    camera_from_vehicle = np.linalg.inv(camera_extrinsic)
    in_camera = points @ camera_from_vehicle[:3, :3].T + camera_from_vehicle[:3, 3]
    depth = np.linalg.norm(in_camera, axis=-1) if depth_type == "range" else in_camera[:, 0]
    cols = np.floor(pixel_x * out_width / width).astype(np.int64)
    rows = np.floor(pixel_y * out_height / height).astype(np.int64)
    keep = (cols >= 0) & (cols < out_width) & (rows >= 0) & (rows < out_height) & (depth > 0)
    image = np.full(out_height * out_width, np.inf)
    np.minimum.at(image, rows[keep] * out_width + cols[keep], depth[keep])
    image[np.isinf(image)] = 0.0
    return image.reshape(out_height, out_width).astype(np.float32)


def _rows(table):
    return table.to_pylist()


def frames(segment, camera_id, output_size, depth_type, motion_compensation=True):
    """Yields (timestamp, JPEG bytes, depth [H_out, W_out] float32) for one segment, in time order."""
    pq = import_parquet()
    camera_calibration = [r for r in _rows(pq.read_table(
        segment["camera_calibration"], columns=[CAMERA, CAMERA_EXTRINSIC, CAMERA_WIDTH, CAMERA_HEIGHT]))
        if r[CAMERA] == camera_id]
    if not camera_calibration:
        raise ValueError(f"camera {camera_id} has no calibration in {segment['camera_calibration']!r}")
    calibration = camera_calibration[0]
    camera_extrinsic = matrix(calibration[CAMERA_EXTRINSIC])
    camera_size = (calibration[CAMERA_WIDTH], calibration[CAMERA_HEIGHT])
    lidar_calibration = {r[LASER]: r for r in _rows(pq.read_table(
        segment["lidar_calibration"], columns=[LASER, LIDAR_EXTRINSIC, BEAM_MIN, BEAM_MAX, BEAM_VALUES]))}
    images = pq.read_table(segment["camera_image"], columns=[TIMESTAMP, CAMERA, IMAGE],
                           filters=[(CAMERA, "=", camera_id)])
    use_pose = motion_compensation and all(c in segment for c in POSE_COMPONENTS)
    for image_row in sorted(_rows(images), key=lambda r: r[TIMESTAMP]):
        timestamp = image_row[TIMESTAMP]
        at_frame = [(TIMESTAMP, "=", timestamp)]
        lidar = {r[LASER]: r for r in _rows(pq.read_table(
            segment["lidar"], columns=[LASER, LIDAR_VALUES, LIDAR_SHAPE], filters=at_frame))}
        projections = {r[LASER]: r for r in _rows(pq.read_table(
            segment["lidar_camera_projection"], columns=[LASER, PROJECTION_VALUES, PROJECTION_SHAPE],
            filters=at_frame))}
        poses, frame_pose = {}, None
        if use_pose:
            poses = {r[LASER]: r for r in _rows(pq.read_table(
                segment["lidar_pose"], columns=[LASER, POSE_VALUES, POSE_SHAPE], filters=at_frame))}
            vehicle = _rows(pq.read_table(segment["vehicle_pose"], columns=[VEHICLE_POSE], filters=at_frame))
            frame_pose = matrix(vehicle[0][VEHICLE_POSE]) if vehicle else None
        all_points, all_x, all_y = [], [], []
        for laser, row in sorted(lidar.items()):
            if laser not in projections or laser not in lidar_calibration or row[LIDAR_VALUES] is None:
                continue
            ranges = range_image(row[LIDAR_VALUES], row[LIDAR_SHAPE])[..., 0]
            projection = range_image(projections[laser][PROJECTION_VALUES], projections[laser][PROJECTION_SHAPE])
            calib = lidar_calibration[laser]
            extrinsic = matrix(calib[LIDAR_EXTRINSIC])
            inclination = inclinations(ranges.shape[0], calib[BEAM_MIN], calib[BEAM_MAX], calib[BEAM_VALUES])
            pixel_pose = None
            if laser in poses and poses[laser][POSE_VALUES] is not None and frame_pose is not None:
                pixel_pose = range_image(poses[laser][POSE_VALUES], poses[laser][POSE_SHAPE])
            points = range_image_to_vehicle(ranges, extrinsic, inclination, pixel_pose, frame_pose)
            p, x, y = camera_points(points, ranges > 0, projection, camera_id)
            all_points.append(p)
            all_x.append(x)
            all_y.append(y)
        if all_points:
            points, x, y = np.concatenate(all_points), np.concatenate(all_x), np.concatenate(all_y)
        else:
            points, x, y = np.zeros((0, 3)), np.zeros(0), np.zeros(0)
        depth = depth_image(points, x, y, camera_extrinsic, camera_size, output_size, depth_type)
        yield timestamp, image_row[IMAGE], depth
