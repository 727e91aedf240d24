"""load_waymo_depth on tiny segments written here in the Waymo Open Dataset v2 Parquet schema.

The schema (column names and Arrow types) is the published one of
waymo_open_dataset/v2 (component.py flattening, perception/{base,camera_image,lidar,
context,pose}.py, column_types.py); the expected depths and pixels are computed from
the geometry of a point at a known position, not with the loader's code.
"""

import math
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.data import load_waymo_depth

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

SEGMENT = "1234_000_000_020_000"
OUT_H, OUT_W = 192, 480
CAM_W, CAM_H = 960, 384  # calibrated image size: the output is half of it
CAM_POSITION = np.array([1.5, 0.0, 2.0])  # FRONT camera in the vehicle frame, axes aligned with the vehicle's
F, CU, CV = 1000.0, 480.0, 192.0  # pinhole intrinsics used to place the projections by hand
TOP_YAW, TOP_POSITION = 0.3, np.array([0.0, 0.0, 2.5])
TRANSFORM = pa.list_(pa.float64(), 16)
SHAPE = pa.list_(pa.int32(), 3)


def _transform(rotation=np.eye(3), translation=(0.0, 0.0, 0.0)):
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rotation, translation
    return m.reshape(-1).tolist()


def _rz(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _pinhole(point_vehicle):
    """Pixel (x, y) of a vehicle-frame point in the FRONT camera (camera frame: x forward, y left, z up)."""
    x, y, z = point_vehicle - CAM_POSITION
    return CU - F * y / x, CV - F * z / x


def _spherical(range_, azimuth, inclination):
    return range_ * np.array([math.cos(azimuth) * math.cos(inclination),
                              math.sin(azimuth) * math.cos(inclination), math.sin(inclination)])


def _write(path, columns):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({name: pa.array(values, type=kind) for name, (kind, values) in columns.items()}), path)


def _keys(n, timestamps=None, sensor=None, sensor_values=None):
    columns = {"key.segment_context_name": (pa.string(), [SEGMENT] * n)}
    if timestamps is not None:
        columns["key.frame_timestamp_micros"] = (pa.int64(), timestamps)
    if sensor is not None:
        columns[sensor] = (pa.int8(), sensor_values)
    return columns


def _scene():
    """Range images, projections and the expected output depth {(row, col): depth} per frame."""
    top_h, top_w = 3, 21
    top_incl = [0.1, 0.0, -0.1]  # uniform in [-0.15, 0.15], highest row first
    front_h, front_w = 2, 5
    ranges_top = np.full((top_h, top_w), -1.0)
    proj_top = np.zeros((top_h, top_w, 6))
    ranges_front = np.full((front_h, front_w), -1.0)
    proj_front = np.zeros((front_h, front_w, 6))
    expected = {}

    def column_azimuth(col, width):  # vehicle-frame azimuth of a range-image column
        return (2.0 * (width - col - 0.5) / width - 1.0) * math.pi

    def add(point, depth_hint=None):
        u, v = _pinhole(point)
        key = (int(math.floor(v * OUT_H / CAM_H)), int(math.floor(u * OUT_W / CAM_W)))
        offset = point - CAM_POSITION
        depth = (float(np.linalg.norm(offset)), float(offset[0]))
        if key in expected:
            depth = min(expected[key], depth)
        expected[key] = depth
        return u, v

    # 1. Straight ahead (column 10 of 21 has azimuth 0), level beam, 30 m: vehicle point (30, 0, 2.5).
    point = _spherical(30.0, 0.0, 0.0) + TOP_POSITION
    np.testing.assert_allclose(point, [30.0, 0.0, 2.5])
    u, v = add(point)
    assert (u, v) == (480.0, pytest.approx(192.0 - 1000.0 * 0.5 / 28.5))
    ranges_top[1, 10] = 30.0
    proj_top[1, 10] = [1, u, v, 0, 0, 0]
    # 2. Column 9 (azimuth 2π/21, to the left), lowest beam, 50 m; FRONT is the 2nd projection.
    point = _spherical(50.0, column_azimuth(9, top_w), top_incl[2]) + TOP_POSITION
    u, v = add(point)
    ranges_top[2, 9] = 50.0
    proj_top[2, 9] = [2, 17.0, 33.0, 1, u, v]
    # 3. Projected only into FRONT_RIGHT: not in the depth map.
    ranges_top[0, 11] = 20.0
    proj_top[0, 11] = [3, 100.0, 100.0, 0, 0, 0]
    # 4. No return (range 0) although a projection is recorded: not in the depth map.
    ranges_top[0, 10] = 0.0
    proj_top[0, 10] = [1, 300.0, 100.0, 0, 0, 0]
    # 5. The FRONT LiDAR with explicit beam inclinations (ascending [-0.1, 0.1]: row 0 = 0.1),
    #    mounted at (4, 0, 0.5), column 2 of 5 straight ahead, 10 m.
    point = _spherical(10.0, 0.0, 0.1) + np.array([4.0, 0.0, 0.5])
    u, v = add(point)
    ranges_front[0, 2] = 10.0
    proj_front[0, 2] = [1, u, v, 0, 0, 0]
    # 6. Two points on one output pixel: the nearer one (at 12 m) wins over the TOP point at 30 m.
    ranges_front[1, 2] = 12.0
    proj_front[1, 2] = proj_top[1, 10]
    near = np.array([4.0, 0.0, 0.5]) + _spherical(12.0, 0.0, -0.1)
    key = (int(math.floor(proj_top[1, 10, 2] * OUT_H / CAM_H)), int(math.floor(proj_top[1, 10, 1] * OUT_W / CAM_W)))
    offset = near - CAM_POSITION
    expected[key] = min(expected[key], (float(np.linalg.norm(offset)), float(offset[0])))
    return ranges_top, proj_top, ranges_front, proj_front, expected


def _image(height=CAM_H, width=CAM_W):
    left = np.tile([200, 30, 30], (height, width // 2, 1))
    right = np.tile([30, 30, 200], (height, width - width // 2, 1))
    return tf.io.encode_jpeg(np.concatenate([left, right], axis=1).astype(np.uint8), quality=95).numpy()


def _write_segment(root, split="training", with_pose=False, skip=()):
    ranges_top, proj_top, ranges_front, proj_front, expected = _scene()
    folder = root / split
    timestamps = [1000, 2000]

    def range_rows(images):  # images: per (timestamp, laser) the [H, W, C] arrays
        return [a.astype(np.float32).reshape(-1).tolist() for a in images], [list(a.shape) for a in images]

    lidar_images = [np.stack([r, r * 0, r * 0, r * 0], -1) for r in (ranges_top, ranges_front)] * 2
    values, shapes = range_rows(lidar_images)
    lasers = [1, 2, 1, 2]
    frame_keys = [1000, 1000, 2000, 2000]
    if "lidar" not in skip:
        _write(folder / "lidar" / f"{SEGMENT}.parquet", {
            **_keys(4, frame_keys, "key.laser_name", lasers),
            "[LiDARComponent].range_image_return1.values": (pa.list_(pa.float32()), values),
            "[LiDARComponent].range_image_return1.shape": (SHAPE, shapes),
            "[LiDARComponent].range_image_return2.values": (pa.list_(pa.float32()), [None] * 4),
            "[LiDARComponent].range_image_return2.shape": (SHAPE, [None] * 4),
        })
    values, shapes = range_rows([proj_top, proj_front] * 2)
    if "lidar_camera_projection" not in skip:
        _write(folder / "lidar_camera_projection" / f"{SEGMENT}.parquet", {
            **_keys(4, frame_keys, "key.laser_name", lasers),
            "[LiDARCameraProjectionComponent].range_image_return1.values": (pa.list_(pa.float32()), values),
            "[LiDARCameraProjectionComponent].range_image_return1.shape": (SHAPE, shapes),
        })
    _write(folder / "lidar_calibration" / f"{SEGMENT}.parquet", {
        **_keys(2, None, "key.laser_name", [1, 2]),
        "[LiDARCalibrationComponent].extrinsic.transform": (TRANSFORM, [
            _transform(_rz(TOP_YAW), TOP_POSITION), _transform(translation=(4.0, 0.0, 0.5))]),
        "[LiDARCalibrationComponent].beam_inclination.min": (pa.float64(), [-0.15, -0.1]),
        "[LiDARCalibrationComponent].beam_inclination.max": (pa.float64(), [0.15, 0.1]),
        "[LiDARCalibrationComponent].beam_inclination.values": (pa.list_(pa.float64()), [None, [-0.1, 0.1]]),
    })
    _write(folder / "camera_calibration" / f"{SEGMENT}.parquet", {
        **_keys(2, None, "key.camera_name", [1, 2]),
        "[CameraCalibrationComponent].intrinsic.f_u": (pa.float64(), [F, F]),
        "[CameraCalibrationComponent].intrinsic.f_v": (pa.float64(), [F, F]),
        "[CameraCalibrationComponent].intrinsic.c_u": (pa.float64(), [CU, CU]),
        "[CameraCalibrationComponent].intrinsic.c_v": (pa.float64(), [CV, CV]),
        "[CameraCalibrationComponent].extrinsic.transform": (TRANSFORM, [
            _transform(translation=CAM_POSITION), _transform(_rz(0.8))]),
        "[CameraCalibrationComponent].width": (pa.int32(), [CAM_W, 1920]),
        "[CameraCalibrationComponent].height": (pa.int32(), [CAM_H, 1280]),
        "[CameraCalibrationComponent].rolling_shutter_direction": (pa.int8(), [2, 2]),
    })
    _write(folder / "camera_image" / f"{SEGMENT}.parquet", {
        # Frames stored out of time order, and a FRONT_LEFT image that must be ignored.
        **_keys(3, [2000, 1000, 1000], "key.camera_name", [1, 1, 2]),
        "[CameraImageComponent].image": (pa.binary(), [_image(), _image(), _image(64, 64)]),
        "[CameraImageComponent].pose_timestamp": (pa.float64(), [2.0, 1.0, 1.0]),
    })
    if with_pose:
        # Frame 2000 only: the TOP LiDAR's points were captured with the vehicle 2 m further back
        # along the world x axis and turned by yaw 0.1; the frame pose is the identity.
        pose = np.zeros(ranges_top.shape + (6,))
        pose[..., 2], pose[..., 3] = 0.1, -2.0
        _write(folder / "lidar_pose" / f"{SEGMENT}.parquet", {
            **_keys(1, [2000], "key.laser_name", [1]),
            "[LiDARPoseComponent].range_image_return1.values": (
                pa.list_(pa.float32()), [pose.astype(np.float32).reshape(-1).tolist()]),
            "[LiDARPoseComponent].range_image_return1.shape": (SHAPE, [list(pose.shape)]),
        })
        _write(folder / "vehicle_pose" / f"{SEGMENT}.parquet", {
            **_keys(1, [2000]),
            "[VehiclePoseComponent].world_from_vehicle.transform": (TRANSFORM, [_transform()]),
        })
    return expected


def _nonzero(depth):
    rows, cols = np.nonzero(depth[..., 0])
    return {(int(r), int(c)): float(depth[r, c, 0]) for r, c in zip(rows, cols)}


@pytest.mark.parametrize("depth_type", ["range", "z"])
def test_points_land_on_the_expected_pixels_with_the_expected_depth(tmp_path, depth_type):
    expected = _write_segment(tmp_path)
    frames = list(load_waymo_depth(str(tmp_path), depth_type=depth_type).as_numpy_iterator())
    assert len(frames) == 2  # two FRONT frames; the FRONT_LEFT image is ignored
    which = 0 if depth_type == "range" else 1
    for image, depth in frames:
        assert image.shape == (OUT_H, OUT_W, 3) and image.dtype == np.float32
        assert depth.shape == (OUT_H, OUT_W, 1) and depth.dtype == np.float32
        got = _nonzero(depth)
        assert set(got) == set(expected)  # points 3 (other camera) and 4 (no return) are absent
        for key, depths in expected.items():
            assert got[key] == pytest.approx(depths[which], rel=1e-5), key
        # The image: red left half, blue right half, resized to 192x480, in [0, 1].
        np.testing.assert_allclose(image[96, 100], [200 / 255, 30 / 255, 30 / 255], atol=0.03)
        np.testing.assert_allclose(image[96, 380], [30 / 255, 30 / 255, 200 / 255], atol=0.03)


def test_straight_ahead_point_by_hand(tmp_path):
    _write_segment(tmp_path)
    _, depth = next(load_waymo_depth(str(tmp_path), depth_type="z").as_numpy_iterator())
    # (30, 0, 2.5) in the vehicle frame is (28.5, 0, 0.5) from the camera: pixel x = 480, y = 192 - 1000·0.5/28.5
    # = 174.46 at 960x384, so output pixel (87, 240); but the FRONT LiDAR's nearer point (12 m, at
    # (4 + 12 cos 0.1, 0, 0.5 − 12 sin 0.1)) shares that pixel and wins: z = 2.5 + 12 cos(0.1).
    assert depth[87, 240, 0] == pytest.approx(2.5 + 12 * math.cos(0.1), rel=1e-6)
    # Point 5: (4 + 10 cos 0.1, 0, 0.5 + 10 sin 0.1), z = 2.5 + 10 cos 0.1.
    z = 2.5 + 10 * math.cos(0.1)
    row = math.floor((CV - F * (0.5 + 10 * math.sin(0.1) - 2.0) / z) / 2)
    assert depth[row, 240, 0] == pytest.approx(z, rel=1e-6)


def test_motion_compensation_uses_the_lidar_and_vehicle_poses(tmp_path):
    expected = _write_segment(tmp_path, with_pose=True)
    frames = list(load_waymo_depth(str(tmp_path), depth_type="z").as_numpy_iterator())
    plain = list(load_waymo_depth(str(tmp_path), depth_type="z", motion_compensation=False).as_numpy_iterator())
    np.testing.assert_array_equal(frames[0][1], plain[0][1])  # frame 1000 has no poses
    np.testing.assert_array_equal(plain[1][1], plain[0][1])
    # Frame 2000: TOP point 2 (pixel from the projection component) moves to Rz(0.1)·p + (−2, 0, 0).
    point = _spherical(50.0, 2 * math.pi / 21, -0.1) + TOP_POSITION
    u, v = _pinhole(point)
    key = (int(math.floor(v / 2)), int(math.floor(u / 2)))
    moved = _rz(0.1) @ point + np.array([-2.0, 0.0, 0.0])
    assert _nonzero(frames[1][1])[key] == pytest.approx(moved[0] - CAM_POSITION[0], rel=1e-5)
    assert _nonzero(plain[1][1])[key] == pytest.approx(expected[key][1], rel=1e-5)


def test_image_size_scales_the_pixels(tmp_path):
    _write_segment(tmp_path)
    _, depth = next(load_waymo_depth(str(tmp_path), image_size=(96, 240), depth_type="z").as_numpy_iterator())
    assert depth.shape == (96, 240, 1)
    assert depth[43, 120, 0] == pytest.approx(2.5 + 12 * math.cos(0.1), rel=1e-6)  # ⌊174.46/4⌋, ⌊480/4⌋


def test_missing_component_files_are_listed(tmp_path):
    _write_segment(tmp_path, skip=("lidar", "lidar_camera_projection"))
    with pytest.raises(FileNotFoundError, match=r"lidar/1234_000_000_020_000\.parquet") as error:
        load_waymo_depth(str(tmp_path))
    assert "lidar_camera_projection/1234_000_000_020_000.parquet" in str(error.value)


def test_missing_split_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="validation"):
        load_waymo_depth(str(tmp_path), split="validation")


def test_missing_pyarrow_names_the_extra(tmp_path, monkeypatch):
    _write_segment(tmp_path)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import pyarrow.parquet now fails
    with pytest.raises(ImportError, match=r'pip install "keras-longtail\[waymo\]"'):
        load_waymo_depth(str(tmp_path))


@pytest.mark.parametrize("kwargs, argument", [
    ({"camera": "REAR"}, "camera"),
    ({"depth_type": "disparity"}, "depth_type"),
    ({"image_size": (192,)}, "image_size"),
    ({"image_size": (0, 480)}, "image_size"),
    ({"split": ""}, "split"),
    ({"segments": ["nope"]}, "segments"),
])
def test_bad_arguments_name_the_argument(tmp_path, kwargs, argument):
    _write_segment(tmp_path)
    with pytest.raises(ValueError, match=argument):
        load_waymo_depth(str(tmp_path), **kwargs)


def test_segments_selects_by_name(tmp_path):
    _write_segment(tmp_path)
    assert len(list(load_waymo_depth(str(tmp_path), segments=[SEGMENT]))) == 2
