"""load_imagenet_lt on tiny trees in the real list-file format, and the streaming pipeline behind it."""

import numpy as np
import pytest
import tensorflow as tf

from keras_longtail.data import StreamingLongTailedData
from keras_longtail.data import load_imagenet_lt
from keras_longtail.data import shot_splits
from tests.data import image_files


@pytest.fixture()
def tree(tmp_path):
    return tmp_path, image_files.write_imagenet_lt(tmp_path)


def _indices_and_labels(dataset):
    pairs = [(image_files.image_index(x.numpy()), int(y)) for x, y in dataset]
    return [i for i, _ in pairs], [y for _, y in pairs]


def test_reads_list_files_counts_names_and_splits(tree):
    root, entries = tree
    data = load_imagenet_lt(str(root), num_classes=3, image_size=32)
    assert isinstance(data, StreamingLongTailedData)
    assert data.class_counts == [6, 3, 1] and data.num_classes == 3 and data.num_train == 10
    assert data.class_names == ["n00000000", "n00000001", "n00000002"]
    assert data.shot_splits == shot_splits([6, 3, 1])
    assert data.num_examples == {"train": 10, "val": 3, "test": 6}
    # Evaluation splits: every listed image once, in list order, with its label.
    indices, labels = _indices_and_labels(data.test)
    assert indices == list(range(13, 19)) and labels == [k for _, k in entries["test"]]
    indices, labels = _indices_and_labels(data.val)
    assert indices == [10, 11, 12] and labels == [0, 1, 2]
    # Training split: a permutation of the list, each image with its own label.
    indices, labels = _indices_and_labels(data.train)
    assert sorted(indices) == list(range(10))
    assert [entries["train"][i][1] for i in indices] == labels
    x, y = next(iter(data.train))
    assert x.shape == (32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0


def test_image_root_differs_from_data_dir(tmp_path):
    images = tmp_path / "imagenet"
    entries = image_files.write_imagenet_lt(images)
    lists = tmp_path / "lists"
    lists.mkdir()
    for split in entries:
        (lists / f"ImageNet_LT_{split}.txt").write_text((images / f"ImageNet_LT_{split}.txt").read_text())
    data = load_imagenet_lt(str(lists), image_root=str(images), num_classes=3, image_size=16)
    assert data.num_examples["test"] == 6 and data.class_names[0] == "n00000000"
    with pytest.raises(FileNotFoundError, match="image_root"):
        load_imagenet_lt(str(lists), num_classes=3)


def test_training_pipeline_yields_224_float_batches_and_drops_the_remainder(tree):
    root, _ = tree
    data = load_imagenet_lt(str(root), num_classes=3, batch_size=4, seed=0)
    batches = list(data.train)
    assert len(batches) == 2  # 10 images, batches of 4, remainder dropped
    for x, y in batches:
        assert x.shape == (4, 224, 224, 3) and x.dtype == tf.float32 and y.shape == (4,) and y.dtype == tf.int32
    assert data.train.element_spec[0].shape == (4, 224, 224, 3)  # static, as TPUs need
    evaluation = list(data.test)
    assert [int(x.shape[0]) for x, _ in evaluation] == [4, 2]  # nothing dropped at evaluation


def test_eval_image_is_resize_and_center_crop_of_the_decoded_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    encoded = tf.io.encode_jpeg(tf.constant(pixels), quality=95)
    (tmp_path / "train").mkdir()
    for split in ("train", "test"):
        (tmp_path / split).mkdir(exist_ok=True)
        (tmp_path / split / "a.JPEG").write_bytes(encoded.numpy())
        (tmp_path / split / "b.JPEG").write_bytes(encoded.numpy())
        (tmp_path / f"ImageNet_LT_{split}.txt").write_text(f"{split}/a.JPEG 0\n{split}/b.JPEG 1\n")
    data = load_imagenet_lt(str(tmp_path), num_classes=2, image_size=20)
    image = next(iter(data.test))[0].numpy()
    # Reference: decode all, take the centred round(0.875 * 48) = 42 square, resize to 20x20.
    decoded = tf.io.decode_jpeg(encoded, channels=3)
    top, left = (48 - 42 + 1) // 2, (64 - 42 + 1) // 2
    crop = tf.cast(decoded[top:top + 42, left:left + 42], tf.float32)
    expected = tf.image.resize(crop, (20, 20), antialias=True).numpy() / 255.0
    np.testing.assert_allclose(image, expected, atol=1e-5)


def test_training_augmentation_is_seeded_and_changes_every_epoch(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "train").mkdir()
    lines = []
    for i in range(4):
        pixels = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
        (tmp_path / "train" / f"{i}.JPEG").write_bytes(tf.io.encode_jpeg(tf.constant(pixels)).numpy())
        lines.append(f"train/{i}.JPEG {i % 2}")
    (tmp_path / "ImageNet_LT_train.txt").write_text("\n".join(lines))
    (tmp_path / "ImageNet_LT_test.txt").write_text("\n".join(lines))
    first = load_imagenet_lt(str(tmp_path), num_classes=2, image_size=16, seed=3, batch_size=4)
    again = load_imagenet_lt(str(tmp_path), num_classes=2, image_size=16, seed=3, batch_size=4)
    epoch1, epoch2 = next(iter(first.train))[0].numpy(), next(iter(first.train))[0].numpy()
    np.testing.assert_array_equal(epoch1, next(iter(again.train))[0].numpy())  # same seed, same first epoch
    assert not np.allclose(epoch1, epoch2)  # new crops (and order) next epoch
    test1, test2 = next(iter(first.test))[0].numpy(), next(iter(first.test))[0].numpy()
    np.testing.assert_array_equal(test1, test2)  # evaluation is deterministic


def test_png_bytes_behind_a_jpeg_name_are_decoded(tmp_path):
    entries = image_files.write_imagenet_lt(tmp_path)
    image_files.write_image(tmp_path / entries["test"][0][0], 13, fmt="png")  # like ImageNet's n02105855_2933
    data = load_imagenet_lt(str(tmp_path), num_classes=3, image_size=16, batch_size=2, seed=0)
    assert _indices_and_labels(data.test.unbatch())[0] == list(range(13, 19))
    image_files.write_image(tmp_path / entries["train"][0][0], 0, fmt="png")
    assert sorted(_indices_and_labels(data.train.unbatch())[0]) == list(range(10))  # PNG through the crop too


def test_file_sharding_per_input_pipeline_splits_the_files(tree):
    root, _ = tree
    data = load_imagenet_lt(str(root), num_classes=3, image_size=16, seed=0)
    shards = []
    for i in range(3):
        context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=i, num_replicas_in_sync=3)
        dataset = data.make_dataset("train", input_context=context)
        assert dataset.options().experimental_distribute.auto_shard_policy == (
            tf.data.experimental.AutoShardPolicy.OFF)
        shards.append(sorted(_indices_and_labels(dataset)[0]))
    assert [len(s) for s in shards] == [4, 3, 3]
    assert sorted(sum(shards, [])) == list(range(10))  # disjoint and complete
    test_shards = [_indices_and_labels(data.make_dataset(
        "test", input_context=tf.distribute.InputContext(2, i, 2)))[0] for i in range(2)]
    assert sorted(sum(test_shards, [])) == list(range(13, 19)) and len(test_shards[0]) == 3
    assert data.train.options().experimental_distribute.auto_shard_policy == (
        tf.data.experimental.AutoShardPolicy.DATA)


@pytest.mark.slow
def test_distribute_datasets_from_function_under_mirrored_strategy(tree):
    import keras

    from tests import helpers

    root, _ = tree
    data = load_imagenet_lt(str(root), num_classes=3, image_size=16, seed=0)
    strategy = helpers.mirrored_strategy()
    distributed = strategy.distribute_datasets_from_function(
        lambda context: data.make_dataset("train", context.get_per_replica_batch_size(4), input_context=context))
    batch = next(iter(distributed))[0]
    shapes = [tuple(x.shape) for x in strategy.experimental_local_results(batch)]
    assert shapes == [(2, 16, 16, 3), (2, 16, 16, 3)]
    # The recipe of docs/data.md: repeat, and steps_per_epoch = num_train // global batch (10 // 4 = 2).
    repeated = strategy.distribute_datasets_from_function(
        lambda context: data.make_dataset("train", context.get_per_replica_batch_size(4),
                                          input_context=context).repeat())
    with strategy.scope():
        model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.GlobalAveragePooling2D(),
                                  keras.layers.Dense(3)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(repeated, epochs=2, steps_per_epoch=data.num_train // 4, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])) and int(model.optimizer.iterations.numpy()) == 4


def test_malformed_line_names_file_and_line_before_any_image_is_touched(tmp_path):
    # No image exists at all: the parse error must come first.
    image_files.write_list(tmp_path / "ImageNet_LT_train.txt", [("train/a.JPEG", 0), ("train/b.JPEG", 1)],
                           extra_lines={2: "train/c.JPEG"})
    image_files.write_list(tmp_path / "ImageNet_LT_test.txt", [("val/a.JPEG", 0)])
    with pytest.raises(ValueError, match=r"ImageNet_LT_train\.txt.*line 2: 'train/c\.JPEG'"):
        load_imagenet_lt(str(tmp_path), num_classes=3)
    image_files.write_list(tmp_path / "ImageNet_LT_train.txt", [("train/a.JPEG", 0)],
                           extra_lines={1: "", 3: "train/b.JPEG 1.5"})
    with pytest.raises(ValueError, match=r"line 3: 'train/b\.JPEG 1\.5'"):
        load_imagenet_lt(str(tmp_path), num_classes=3)


def test_label_out_of_range_names_file_line_and_label(tree):
    root, entries = tree
    image_files.write_list(root / "ImageNet_LT_test.txt", entries["test"][:2] + [(entries["test"][2][0], 3)])
    with pytest.raises(ValueError, match=r"Received: label=3 at .*ImageNet_LT_test\.txt line 3"):
        load_imagenet_lt(str(root), num_classes=3)
    image_files.write_list(root / "ImageNet_LT_test.txt", [(entries["test"][0][0], -1)])
    with pytest.raises(ValueError, match=r"\[0, 3\).*label=-1"):
        load_imagenet_lt(str(root), num_classes=3)
    with pytest.raises(ValueError, match=r"\[0, 1000\).*label=-1"):
        load_imagenet_lt(str(root))


def test_missing_image_is_named_up_front_or_at_first_read(tree):
    root, entries = tree
    missing = root / entries["train"][4][0]
    missing.unlink()
    with pytest.raises(FileNotFoundError,
                       match=rf"Received 1 missing image\(s\); first: .*{missing.name} \(line 5\)"):
        load_imagenet_lt(str(root), num_classes=3)
    data = load_imagenet_lt(str(root), num_classes=3, image_size=16, check_files=False)
    with pytest.raises(tf.errors.NotFoundError, match=missing.name):
        list(data.train)


def test_missing_list_files_and_optional_val(tree):
    root, _ = tree
    (root / "ImageNet_LT_val.txt").unlink()
    data = load_imagenet_lt(str(root), num_classes=3, image_size=16)
    assert data.val is None and "val" not in data.num_examples
    with pytest.raises(ValueError, match="split"):
        data.make_dataset("val")
    (root / "ImageNet_LT_test.txt").unlink()
    with pytest.raises(FileNotFoundError, match="ImageNet_LT_test.txt"):
        load_imagenet_lt(str(root), num_classes=3)
    with pytest.raises(FileNotFoundError, match="data_dir"):
        load_imagenet_lt(str(root / "nowhere"))


def test_bad_arguments(tree):
    root, _ = tree
    with pytest.raises(ValueError, match="image_size"):
        load_imagenet_lt(str(root), num_classes=3, image_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        load_imagenet_lt(str(root), num_classes=3, batch_size=0)
    with pytest.raises(TypeError, match="data_dir"):
        load_imagenet_lt(None)


def test_cmyk_jpeg_is_decoded_to_rgb(tmp_path):
    image = pytest.importorskip("PIL.Image")
    entries = image_files.write_imagenet_lt(tmp_path)
    pixels = np.zeros((30, 40, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = image_files.red_level(13), 128, 200
    image.fromarray(pixels).convert("CMYK").save(tmp_path / entries["test"][0][0], "JPEG", quality=95)
    data = load_imagenet_lt(str(tmp_path), num_classes=3, image_size=16)
    first = next(iter(data.test))[0].numpy()
    np.testing.assert_allclose(first.reshape(-1, 3).mean(0) * 255, [image_files.red_level(13), 128, 200], atol=4)
