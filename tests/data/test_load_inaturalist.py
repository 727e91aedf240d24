"""load_inaturalist from COCO-style JSON files and from a tensorflow-datasets copy prepared offline."""

import json

import pytest
import tensorflow as tf

from keras_longtail.data import load_inaturalist
from keras_longtail.data import shot_splits
from tests.data import image_files


def _indices_and_labels(dataset):
    pairs = [(image_files.image_index(x.numpy()), int(y)) for x, y in dataset]
    return [i for i, _ in pairs], [y for _, y in pairs]


def test_reads_json_annotations(tmp_path):
    entries = image_files.write_inaturalist_json(tmp_path)
    data = load_inaturalist(str(tmp_path), image_size=16, seed=0)
    assert data.class_counts == [5, 2, 1] and data.class_names == ["Aa bb", "Cc dd", "Ee ff"]
    assert data.shot_splits == shot_splits([5, 2, 1]) and data.val is None
    assert data.num_examples == {"train": 8, "test": 6}
    indices, labels = _indices_and_labels(data.test)  # val2018 in `images` order
    assert indices == list(range(8, 14)) and labels == [k for _, k in entries["val"]]
    indices, labels = _indices_and_labels(data.train)
    assert sorted(indices) == list(range(8)) and labels == [entries["train"][i][1] for i in indices]


def test_training_batches_are_224_floats_and_shard_per_pipeline(tmp_path):
    image_files.write_inaturalist_json(tmp_path, counts=(6, 3, 3))
    data = load_inaturalist(str(tmp_path), source="json", batch_size=4, seed=1)
    shapes = [(tuple(x.shape), x.dtype, y.dtype) for x, y in data.train]
    assert shapes == [((4, 224, 224, 3), tf.float32, tf.int32)] * 3
    shards = [sorted(_indices_and_labels(data.make_dataset(
        "train", batch_size=None, input_context=tf.distribute.InputContext(2, i, 2)))[0]) for i in range(2)]
    assert [len(s) for s in shards] == [6, 6] and sorted(sum(shards, [])) == list(range(12))


def test_category_ids_need_not_start_at_zero(tmp_path):
    image_files.write_inaturalist_json(tmp_path, category_ids=(30, 10, 20))
    data = load_inaturalist(str(tmp_path), image_size=16)
    # Labels are the sorted ids' positions: 10 -> 0, 20 -> 1, 30 -> 2.
    assert data.class_counts == [2, 1, 5] and data.class_names == ["Cc dd", "Ee ff", "Aa bb"]


def test_category_out_of_range_names_file_and_entry(tmp_path):
    image_files.write_inaturalist_json(tmp_path)
    val = json.loads((tmp_path / "val2018.json").read_text())
    val["annotations"][3]["category_id"] = 7
    (tmp_path / "val2018.json").write_text(json.dumps(val))
    with pytest.raises(ValueError, match=r"Received: category_id=7 at .*val2018\.json annotations\[3\]"):
        load_inaturalist(str(tmp_path))


def test_malformed_annotations_are_reported_before_reading_images(tmp_path):
    image_files.write_inaturalist_json(tmp_path)
    train = json.loads((tmp_path / "train2018.json").read_text())
    del train["images"][2]["file_name"]
    (tmp_path / "train2018.json").write_text(json.dumps(train))
    with pytest.raises(ValueError, match=r"train2018\.json images\[2\] to have 'id' and 'file_name'"):
        load_inaturalist(str(tmp_path))
    (tmp_path / "train2018.json").write_text('{"images": [], "annotations": [')
    with pytest.raises(ValueError, match=r"train2018\.json to be a JSON file"):
        load_inaturalist(str(tmp_path))
    del train["annotations"]
    (tmp_path / "train2018.json").write_text(json.dumps(train))
    with pytest.raises(ValueError, match=r"'annotations'"):
        load_inaturalist(str(tmp_path))


def test_image_without_annotation_is_an_error(tmp_path):
    image_files.write_inaturalist_json(tmp_path)
    train = json.loads((tmp_path / "train2018.json").read_text())
    train["annotations"].pop()
    (tmp_path / "train2018.json").write_text(json.dumps(train))
    with pytest.raises(ValueError, match=r"1 image\(s\) without one"):
        load_inaturalist(str(tmp_path))


def test_missing_image_is_named(tmp_path):
    entries = image_files.write_inaturalist_json(tmp_path)
    (tmp_path / entries["val"][1][0]).unlink()
    with pytest.raises(FileNotFoundError, match=r"val2018\.json.*val_1\.jpg \(images\[1\]\)"):
        load_inaturalist(str(tmp_path))


def test_no_source_lists_what_was_tried_and_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)train2018\.json.*i_naturalist2018.*not prepared"):
        load_inaturalist(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not prepared"):
        load_inaturalist(str(tmp_path), source="tfds")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, nothing downloaded
    with pytest.raises(ValueError, match="source"):
        load_inaturalist(str(tmp_path), source="web")
