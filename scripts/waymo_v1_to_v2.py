"""Export Waymo Open Dataset v1 TFRecord `Frame` files to the v2 Parquet layout read by
`keras_longtail.data.load_waymo_depth` (only the columns it reads).

NOT part of the package and NOT tested here: it needs the official `waymo-open-dataset`
package, whose wheels pin TensorFlow 2.11-2.13 and cannot be installed beside
keras_longtail's TensorFlow. Run it in a separate environment, e.g.

    python3.10 -m venv /tmp/wod && . /tmp/wod/bin/activate
    pip install waymo-open-dataset-tf-2-12-0 pyarrow
    python scripts/waymo_v1_to_v2.py --output /data/waymo_v2/training /data/waymo_v1/training/*.tfrecord

then, in the keras_longtail environment:

    load_waymo_depth("/data/waymo_v2", split="training")

The official v2 release already ships this layout; use this only if you hold v1 files.
Column names and types follow the published v2 schema (waymo_open_dataset/v2/perception);
range images are stored decoded (`values` + `shape`), as in v2.
"""

import argparse
import collections
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf
from waymo_open_dataset import dataset_pb2
from waymo_open_dataset.utils import frame_utils

TRANSFORM = pa.list_(pa.float64(), 16)
SHAPE = pa.list_(pa.int32(), 3)
FLOATS = pa.list_(pa.float32())
TYPES = {
    "key.segment_context_name": pa.string(), "key.frame_timestamp_micros": pa.int64(),
    "key.camera_name": pa.int8(), "key.laser_name": pa.int8(),
    "[CameraImageComponent].image": pa.binary(),
    "[CameraCalibrationComponent].extrinsic.transform": TRANSFORM,
    "[CameraCalibrationComponent].width": pa.int32(), "[CameraCalibrationComponent].height": pa.int32(),
    "[LiDARComponent].range_image_return1.values": FLOATS, "[LiDARComponent].range_image_return1.shape": SHAPE,
    "[LiDARCameraProjectionComponent].range_image_return1.values": FLOATS,
    "[LiDARCameraProjectionComponent].range_image_return1.shape": SHAPE,
    "[LiDARPoseComponent].range_image_return1.values": FLOATS,
    "[LiDARPoseComponent].range_image_return1.shape": SHAPE,
    "[VehiclePoseComponent].world_from_vehicle.transform": TRANSFORM,
    "[LiDARCalibrationComponent].extrinsic.transform": TRANSFORM,
    "[LiDARCalibrationComponent].beam_inclination.min": pa.float64(),
    "[LiDARCalibrationComponent].beam_inclination.max": pa.float64(),
    "[LiDARCalibrationComponent].beam_inclination.values": pa.list_(pa.float64()),
}
INTRINSICS = ("f_u", "f_v", "c_u", "c_v", "k1", "k2", "p1", "p2", "k3")
for _name in INTRINSICS:
    TYPES[f"[CameraCalibrationComponent].intrinsic.{_name}"] = pa.float64()


def _matrix(matrix):
    return list(np.asarray(matrix.data, dtype=np.float32)), list(matrix.shape.dims)


def convert(path, output):
    tables = collections.defaultdict(lambda: collections.defaultdict(list))
    segment = None
    for record in tf.data.TFRecordDataset(str(path)):
        frame = dataset_pb2.Frame.FromString(bytes(record.numpy()))
        segment, timestamp = frame.context.name, frame.timestamp_micros
        if "camera_calibration" not in tables:
            for calibration in frame.context.camera_calibrations:
                row = tables["camera_calibration"]
                row["key.segment_context_name"].append(segment)
                row["key.camera_name"].append(calibration.name)
                row["[CameraCalibrationComponent].extrinsic.transform"].append(list(calibration.extrinsic.transform))
                row["[CameraCalibrationComponent].width"].append(calibration.width)
                row["[CameraCalibrationComponent].height"].append(calibration.height)
                for name, value in zip(INTRINSICS, calibration.intrinsic):
                    row[f"[CameraCalibrationComponent].intrinsic.{name}"].append(value)
            for calibration in frame.context.laser_calibrations:
                row = tables["lidar_calibration"]
                row["key.segment_context_name"].append(segment)
                row["key.laser_name"].append(calibration.name)
                row["[LiDARCalibrationComponent].extrinsic.transform"].append(list(calibration.extrinsic.transform))
                row["[LiDARCalibrationComponent].beam_inclination.min"].append(calibration.beam_inclination_min)
                row["[LiDARCalibrationComponent].beam_inclination.max"].append(calibration.beam_inclination_max)
                row["[LiDARCalibrationComponent].beam_inclination.values"].append(
                    list(calibration.beam_inclinations) or None)
        for image in frame.images:
            row = tables["camera_image"]
            row["key.segment_context_name"].append(segment)
            row["key.frame_timestamp_micros"].append(timestamp)
            row["key.camera_name"].append(image.name)
            row["[CameraImageComponent].image"].append(image.image)
        row = tables["vehicle_pose"]
        row["key.segment_context_name"].append(segment)
        row["key.frame_timestamp_micros"].append(timestamp)
        row["[VehiclePoseComponent].world_from_vehicle.transform"].append(list(frame.pose.transform))
        parsed = frame_utils.parse_range_image_and_camera_projection(frame)
        range_images, camera_projections, top_pose = parsed[0], parsed[1], parsed[-1]
        for laser, returns in range_images.items():
            for component, prefix, matrix in (
                    ("lidar", "[LiDARComponent]", returns[0]),
                    ("lidar_camera_projection", "[LiDARCameraProjectionComponent]", camera_projections[laser][0])):
                values, shape = _matrix(matrix)
                row = tables[component]
                row["key.segment_context_name"].append(segment)
                row["key.frame_timestamp_micros"].append(timestamp)
                row["key.laser_name"].append(laser)
                row[f"{prefix}.range_image_return1.values"].append(values)
                row[f"{prefix}.range_image_return1.shape"].append(shape)
            if laser == dataset_pb2.LaserName.TOP and top_pose is not None:
                values, shape = _matrix(top_pose)
                row = tables["lidar_pose"]
                row["key.segment_context_name"].append(segment)
                row["key.frame_timestamp_micros"].append(timestamp)
                row["key.laser_name"].append(laser)
                row["[LiDARPoseComponent].range_image_return1.values"].append(values)
                row["[LiDARPoseComponent].range_image_return1.shape"].append(shape)
    for component, columns in tables.items():
        folder = pathlib.Path(output) / component
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table({name: pa.array(values, type=TYPES[name]) for name, values in columns.items()})
        pq.write_table(table, folder / f"{segment}.parquet")
    return segment


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="the split folder to write, e.g. /data/waymo_v2/training")
    parser.add_argument("tfrecords", nargs="+", help="v1 segment files (one segment per file)")
    args = parser.parse_args()
    for path in args.tfrecords:
        print(f"{path} -> {convert(path, args.output)}")


if __name__ == "__main__":
    main()
