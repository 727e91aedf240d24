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
    with pytest.raises(FileNotFoundError, match=r"val2018\.json.*val_0_1\.jpg \(images\[1\]\)"):
        load_inaturalist(str(tmp_path))


def test_no_source_lists_what_was_tried_and_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)train2018\.json.*i_naturalist2018.*not prepared"):
        load_inaturalist(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not prepared"):
        load_inaturalist(str(tmp_path), source="tfds")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, nothing downloaded
    with pytest.raises(ValueError, match="source"):
        load_inaturalist(str(tmp_path), source="web")


@pytest.fixture(scope="module")
def prepared_tfds(tmp_path_factory):
    """A real `i_naturalist2018` tfds copy, built offline by tfds' own builder from tiny archives."""
    import pathlib
    import tarfile
    from unittest import mock

    tfds = pytest.importorskip("tensorflow_datasets")
    root = tmp_path_factory.mktemp("inat_tfds")
    labels_file = (pathlib.Path(tfds.__file__).parent / "image_classification" / "i_naturalist2018"
                   / "inaturalist2018_labels.txt")
    names = labels_file.read_text().splitlines()[:3]
    source = root / "json"
    entries = image_files.write_inaturalist_json(source, names=tuple(names), reverse_annotations=False)
    for archive, members in (("train_val2018.tar.gz", [f for s in entries.values() for f, _ in s]),
                             ("test2018.tar.gz", [entries["val"][0][0]])):
        with tarfile.open(root / archive, "w:gz") as tar:
            for name in members:
                tar.add(source / name, arcname=name)
    for split in ("train", "val"):
        (root / f"{split}_annos").mkdir()
        (root / f"{split}_annos" / f"{split}2018.json").write_text((source / f"{split}2018.json").read_text())
    (root / "categories").mkdir()
    (root / "categories" / "categories.json").write_text(json.dumps([{"id": k, "name": n}
                                                                      for k, n in enumerate(names)]))
    downloaded = {"trainval_images": str(root / "train_val2018.tar.gz"), "train_annos": str(root / "train_annos"),
                  "val_annos": str(root / "val_annos"), "test_images": str(root / "test2018.tar.gz"),
                  "categories": str(root / "categories")}
    with mock.patch.object(tfds.download.DownloadManager, "download_and_extract", return_value=downloaded):
        tfds.builder("i_naturalist2018", data_dir=str(root / "tfds")).download_and_prepare(
            download_dir=str(root / "downloads"))
    return root, entries


def test_reads_a_prepared_tfds_copy(prepared_tfds):
    root, entries = prepared_tfds
    data = load_inaturalist(str(root / "tfds"), image_size=16, seed=0)  # "auto": no JSON there, tfds found
    assert data.num_classes == 8142 and data.class_counts[:3] == [5, 2, 1] and data.num_train == 8
    assert data.num_examples == {"train": 8, "test": 6} and data.val is None
    # Each image keeps its own label (tfds stores the examples in its own order).
    indices, labels = _indices_and_labels(data.test)
    assert sorted(zip(indices, labels)) == [(8 + i, k) for i, (_, k) in enumerate(entries["val"])]
    indices, labels = _indices_and_labels(data.train)
    assert sorted(zip(indices, labels)) == [(i, k) for i, (_, k) in enumerate(entries["train"])]
    assert [tuple(x.shape) for x, _ in data.make_dataset("train", batch_size=4)] == [(4, 16, 16, 3)] * 2
    # The JSON files the copy was built from give the same labels and names.
    from_json = load_inaturalist(str(root / "json"), image_size=16)
    assert from_json.class_counts == data.class_counts[:3] and from_json.class_names == data.class_names[:3]
