"""load_places_lt on a tiny tree in the Places-LT list-file format (the pipeline is load_imagenet_lt's)."""

import pytest
import tensorflow as tf

from keras_longtail.data import load_places_lt
from tests.data import image_files

SCENES = ["/a/abbey", "/b/bamboo_forest", "/a/apartment_building/outdoor"]


def _write(root):
    return image_files.write_imagenet_lt(root, counts=(5, 2, 1), prefix="Places_LT",
                                         folder=lambda k: f"/data_256{SCENES[k]}")


def test_reads_places_lists_with_leading_slash_and_scene_names(tmp_path):
    entries = _write(tmp_path)
    assert entries["train"][0][0].startswith("/data_256/a/abbey/")  # as in the OLTR list files
    data = load_places_lt(str(tmp_path), image_size=24, batch_size=2, seed=0)
    assert data.num_classes == 365 and data.class_counts[:3] == [5, 2, 1] and data.num_train == 8
    assert data.class_names[:3] == ["a/abbey", "b/bamboo_forest", "a/apartment_building/outdoor"]
    assert data.class_names[3] == "3"  # a class without training images keeps its index as name
    assert data.shot_splits.few == list(range(365))  # every class has < 20 images here
    x, y = next(iter(data.train))
    assert x.shape == (2, 24, 24, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    labels = [int(v) for _, ys in data.test for v in ys]
    assert labels == [k for _, k in entries["test"]]


def test_places_errors_name_the_list_file(tmp_path):
    entries = _write(tmp_path)
    image_files.write_list(tmp_path / "Places_LT_val.txt", entries["val"], extra_lines={2: "/val/x.jpg 3 extra"})
    with pytest.raises(ValueError, match=r"Places_LT_val\.txt.*line 2"):
        load_places_lt(str(tmp_path))
    image_files.write_list(tmp_path / "Places_LT_val.txt", entries["val"] + [("/val/x.jpg", 365)])
    with pytest.raises(ValueError, match=r"label=365 at .*Places_LT_val\.txt line 4"):
        load_places_lt(str(tmp_path))
    image_files.write_list(tmp_path / "Places_LT_val.txt", entries["val"] + [("/val/x.jpg", 364)])
    with pytest.raises(FileNotFoundError, match=r"val/x\.jpg \(line 4\)"):
        load_places_lt(str(tmp_path))
