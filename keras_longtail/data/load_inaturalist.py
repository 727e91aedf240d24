"""iNaturalist 2018, streamed from its JSON annotations or from a prepared tensorflow-datasets copy."""

import os

import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail.data import _large_scale
from keras_longtail.data.shot_splits import shot_splits
from keras_longtail.data.streaming_long_tailed_data import StreamingLongTailedData

SOURCES = ("auto", "json", "tfds")
TFDS_NAME = "i_naturalist2018"
# Encoded images (full-size JPEGs, ~100-200 kB) held by the shuffle buffer of the tensorflow-datasets source.
TFDS_SHUFFLE_BUFFER = 4096


def load_inaturalist(data_dir, image_root=None, source="auto", batch_size=None, image_size=224, seed=None,
                     check_files=True):
    """Streams iNaturalist 2018: 437,513 training images of 8,142 species, naturally long-tailed.

    iNaturalist 2018 (Van Horn et al., 2018) is long-tailed as collected (1,000 to
    2 training images per species). Its labelled evaluation split is `val2018`
    (24,426 images, 3 per class), returned as `test`, as every long-tailed paper
    uses it; `val` is `None`.

    Sources (`source="auto"` takes the first that holds the data):

    1. `"json"`: `train2018.json` and `val2018.json` in `data_dir`, COCO-style:
       `images` (`id`, `file_name` relative to `image_root`, e.g.
       `train_val2018/Plantae/7477/3b60c9486db1d2ee875f11a669fbde4a.jpg`),
       `annotations` (`image_id`, `category_id`, one per image) and `categories`
       (`id`, `name`). Labels are the category ids in sorted order (the ids
       themselves for 2018's 0..8141); class names are the category names.
       Errors are found before a pipeline is built and name the file and entry:
       an invalid file, a missing key, a `category_id` that is not a category
       (`ValueError`), and, with `check_files=True`, a listed image that does not
       exist (`FileNotFoundError`, one directory listing per folder; with
       `check_files=False` a missing image fails at first read with TensorFlow's
       `NotFoundError` naming it).
    2. `"tfds"`: tensorflow-datasets' `i_naturalist2018`, already prepared under
       `data_dir` (its `data_dir`); nothing is ever downloaded. Labels and names
       are tfds' `ClassLabel`, which lists the categories in id order. Class counts
       come from one pass over the training labels (it reads the training records
       once). Per-pipeline sharding uses tfds' file sharding.

    The pipelines are those of `load_imagenet_lt`: parallel decoding, training
    images random-resized crop + flip, evaluation images resize + center crop,
    float32 in [0, 1].

    Args:
        data_dir: folder with `train2018.json` / `val2018.json`, or the
            tensorflow-datasets data directory holding a prepared `i_naturalist2018`.
        image_root: folder the JSON `file_name`s are relative to (the one holding
            `train_val2018/`). Defaults to `data_dir`. Unused by `"tfds"`.
        source: `"auto"`, `"json"` or `"tfds"`. Defaults to `"auto"`.
        batch_size: batch size of the returned datasets (training batches drop the
            remainder), or `None` for unbatched datasets. Defaults to `None`.
        image_size: side of the square output images, >= 8. Defaults to 224.
        seed: integer seed of the shuffling and augmentation, or `None`.
            Defaults to `None`.
        check_files: (`"json"`) check up front that every listed image exists.
            Defaults to `True`.

    Returns:
        A `StreamingLongTailedData(train, test, class_counts, class_names, val=None,
        shot_splits, num_examples, make_dataset)`.

    Raises:
        FileNotFoundError: no source holds the data (the message lists what was
            tried), or a listed image is missing.
        ValueError: malformed annotations or a category out of range (file and
            entry named).
        ImportError: `source="tfds"` without tensorflow-datasets installed.

    Example:

    ```python
    data = load_inaturalist("/data/inaturalist2018", batch_size=512, seed=0)
    data.num_classes, data.num_train, data.num_examples["test"]  # 8142, 437513, 24426
    model = keras_longtail.models.resnet50(data.num_classes)
    model.fit(data.train, validation_data=data.test, epochs=90)
    ```

    References:
        - Van Horn et al., "The iNaturalist Species Classification and Detection
          Dataset", CVPR 2018, arXiv:1707.06642.
    """
    _validation.check_choice("source", source, set(SOURCES))
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"Expected `data_dir` to be a path. Received: data_dir={data_dir!r}")
    data_dir, image_root = _large_scale.check_paths(data_dir, image_root)
    batch_size = _large_scale.check_batch_size(batch_size)
    image_size = _large_scale.check_image_size(image_size)
    seed = _large_scale.check_seed(seed)
    _backend.require_tensorflow_backend("load_inaturalist (it returns tf.data pipelines)")
    train_json = _large_scale.join(data_dir, "train2018.json")
    val_json = _large_scale.join(data_dir, "val2018.json")
    tried = []
    if source in ("auto", "json"):
        present = [_large_scale.exists(p) for p in (train_json, val_json)]
        if all(present):
            return _from_json(train_json, val_json, image_root, batch_size, image_size, seed, check_files)
        tried.append(f"JSON annotations: missing {[p for p, ok in zip((train_json, val_json), present) if not ok]}")
    if source in ("auto", "tfds"):
        builder, reason = _tfds_builder(data_dir, required=source == "tfds")
        if builder is not None:
            return _from_tfds(builder, batch_size, image_size, seed)
        tried.append(reason)
    raise FileNotFoundError(f"No iNaturalist 2018 data found in data_dir={data_dir!r}. Tried:\n  - "
                            + "\n  - ".join(tried))


def _from_json(train_json, val_json, image_root, batch_size, image_size, seed, check_files):
    train, category_ids, names = _large_scale.read_coco_annotations(train_json, image_root)
    test, _, _ = _large_scale.read_coco_annotations(val_json, image_root, category_ids=category_ids)
    splits = {"train": train, "test": test}
    if check_files:
        for split in splits.values():
            _large_scale.check_files(split, image_root)
    return _large_scale.streaming_data(splits, names, len(names), batch_size, image_size, seed)


def _tfds_builder(data_dir, required):
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        if required:
            raise ImportError("source='tfds' needs tensorflow-datasets (`pip install tensorflow-datasets`).") from error
        return None, f"tensorflow-datasets: not installed ({error})"
    try:
        builder = tfds.builder(TFDS_NAME, data_dir=data_dir)
        prepared = builder.is_prepared()
    except Exception as error:  # tfds raises many types for a missing or foreign data_dir
        return None, f"tensorflow-datasets {TFDS_NAME!r}: {type(error).__name__}: {str(error)[:200]}"
    if not prepared:
        return None, f"tensorflow-datasets {TFDS_NAME!r}: not prepared in {builder.data_dir}"
    return builder, None


def _from_tfds(builder, batch_size, image_size, seed):
    import tensorflow_datasets as tfds

    tf = _backend.import_tensorflow()
    splits = {"train": "train", "test": "validation"}

    def records(split, shuffle_files=False, input_context=None):
        read_config = tfds.ReadConfig(input_context=input_context, shuffle_seed=seed, try_autocache=False)
        dataset = builder.as_dataset(split=splits[split], shuffle_files=shuffle_files, read_config=read_config,
                                     decoders={"image": tfds.decode.SkipDecoding()})
        return dataset.map(lambda example: (example["image"], tf.cast(example["label"], tf.int32)),
                           num_parallel_calls=tf.data.AUTOTUNE)

    def make_dataset(split, batch_size=batch_size, input_context=None, training=None):
        _large_scale.check_split_name(split, splits)
        batch_size = _large_scale.check_batch_size(batch_size)
        training = split == "train" if training is None else bool(training)
        dataset = records(split, shuffle_files=training, input_context=input_context)
        return _large_scale.image_pipeline(dataset, training, batch_size, image_size, seed, input_context,
                                           read_files=False, shuffle_buffer=TFDS_SHUFFLE_BUFFER if training else 0)

    names = list(builder.info.features["label"].names)
    counts = np.zeros(len(names), np.int64)
    for labels in records("train").map(lambda image, label: label).batch(65536).as_numpy_iterator():
        counts += np.bincount(labels, minlength=len(names))
    counts = counts.tolist()
    return StreamingLongTailedData(
        train=make_dataset("train"),
        test=make_dataset("test"),
        class_counts=counts,
        class_names=names,
        val=None,
        shot_splits=shot_splits(counts),
        num_examples={name: int(builder.info.splits[tfds_split].num_examples) for name, tfds_split in splits.items()},
        make_dataset=make_dataset,
    )
