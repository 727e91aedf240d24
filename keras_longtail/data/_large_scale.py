"""List files, COCO-style annotations and the streaming image pipeline of the large-scale loaders.

Everything that can be wrong with the metadata (a malformed line, a label out of
range, a missing image) is found here, in Python, before a `tf.data` pipeline is
built; the pipeline itself only reads, decodes and augments.
"""

import dataclasses
import json
import os
import re

import numpy as np

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail.data.shot_splits import shot_splits
from keras_longtail.data.streaming_long_tailed_data import StreamingLongTailedData

# Evaluation: resize the shorter side to image_size / EVAL_CROP_FRACTION (256 for 224), center-crop image_size.
EVAL_CROP_FRACTION = 0.875
# Training: the random-resized crop of Szegedy et al. (2015) with torchvision's defaults.
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_MAX_ATTEMPTS = 10
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclasses.dataclass
class Split:
    """One split's files: full image paths, int32 labels and where each entry was declared."""

    paths: list
    labels: np.ndarray
    source: str  # the list or annotation file
    locations: list  # per example: "line 12" or "images[3]", for error messages


def _is_remote(path):
    return "://" in str(path)


def join(root, relative):
    """`root/relative`, with a leading `/` of `relative` ignored (list files are relative to the image root)."""
    relative = relative.lstrip("/")
    if _is_remote(root):
        return root.rstrip("/") + "/" + relative
    return os.path.join(root, relative)


def _read_text(path):
    if _is_remote(path):
        tf = _backend.import_tensorflow()
        with tf.io.gfile.GFile(path, "r") as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def exists(path):
    if _is_remote(path):
        return _backend.import_tensorflow().io.gfile.exists(path)
    return os.path.exists(path)


def _listdir(directory):
    """File names in `directory` (an empty set when it does not exist)."""
    if _is_remote(directory):
        tf = _backend.import_tensorflow()
        if not tf.io.gfile.isdir(directory):
            return set()
        return {name.rstrip("/") for name in tf.io.gfile.listdir(directory)}
    try:
        return set(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return set()


def read_list_file(path, image_root, num_classes):
    """Parses `<relative image path> <integer label>` lines; blank lines are skipped.

    Raises `ValueError` naming the file and line number for a malformed line or a
    label outside [0, num_classes), before anything else happens.
    """
    paths, labels, locations = [], [], []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        parts = text.rsplit(None, 1)
        if len(parts) != 2 or not _INTEGER.match(parts[1]):
            raise ValueError(
                f"Expected every line of {path} to be '<relative image path> <integer label>'. "
                f"Received at line {number}: {text!r}"
            )
        label = int(parts[1])
        if not 0 <= label < num_classes:
            raise ValueError(
                f"Expected labels in [0, {num_classes}) (num_classes={num_classes}). "
                f"Received: label={label} at {path} line {number}: {text!r}"
            )
        paths.append(join(image_root, parts[0]))
        labels.append(label)
        locations.append(f"line {number}")
    if not paths:
        raise ValueError(f"Expected at least one '<path> <label>' line in {path}. Received an empty list file.")
    return Split(paths, np.asarray(labels, dtype=np.int32), path, locations)


def read_coco_annotations(path, image_root, category_ids=None):
    """Reads iNaturalist's COCO-style JSON: `images`, `annotations`, `categories`.

    Labels are the positions of the category ids in sorted order, which are the
    ids themselves when they run 0..C-1 (iNaturalist 2017/2018/2019). Pass the
    training file's `category_ids` when reading the validation file so both use
    one label map. Returns `(split, category_ids, category_names)`.
    """
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"Expected {path} to be a JSON file. Received: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"Expected {path} to hold a JSON object. Received: {type(data).__name__}")
    keys = ("images", "annotations") if category_ids is not None else ("images", "annotations", "categories")
    missing = [key for key in keys if not isinstance(data.get(key), list)]
    if missing:
        raise ValueError(f"Expected {path} to have the COCO-style lists {list(keys)}. Received no list for {missing}")
    names = None
    if category_ids is None:
        categories = {}
        for i, category in enumerate(data["categories"]):
            if not isinstance(category, dict) or "id" not in category:
                raise ValueError(f"Expected {path} categories[{i}] to have an 'id'. Received: {category!r}")
            categories[category["id"]] = str(category.get("name", category["id"]))
        if not categories:
            raise ValueError(f"Expected at least one category in {path}. Received: categories=[]")
        category_ids = sorted(categories)
        names = [categories[c] for c in category_ids]
    label_of = {c: k for k, c in enumerate(category_ids)}

    file_names = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise ValueError(f"Expected {path} images[{i}] to have 'id' and 'file_name'. Received: {image!r}")
        file_names[image["id"]] = (image["file_name"], i)
    labels = {}
    for i, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, dict) or "image_id" not in annotation or "category_id" not in annotation:
            raise ValueError(
                f"Expected {path} annotations[{i}] to have 'image_id' and 'category_id'. Received: {annotation!r}")
        image_id, category = annotation["image_id"], annotation["category_id"]
        if image_id not in file_names:
            raise ValueError(f"Expected {path} annotations[{i}] to refer to an image of `images`. "
                             f"Received: image_id={image_id!r}")
        if category not in label_of:
            raise ValueError(
                f"Expected category_id among the {len(category_ids)} categories (ids {category_ids[0]!r}.."
                f"{category_ids[-1]!r}). Received: category_id={category!r} at {path} annotations[{i}]")
        if image_id in labels and labels[image_id][0] != label_of[category]:
            raise ValueError(f"Expected one category per image. Received two for image_id={image_id!r} at "
                             f"{path} annotations[{labels[image_id][1]}] and annotations[{i}]")
        labels[image_id] = (label_of[category], i)
    unlabelled = [image_id for image_id in file_names if image_id not in labels]
    if unlabelled:
        file_name, i = file_names[unlabelled[0]]
        raise ValueError(f"Expected an annotation for every image. Received {len(unlabelled)} image(s) without one "
                         f"in {path}, first images[{i}]: {file_name!r}")
    if not file_names:
        raise ValueError(f"Expected at least one image in {path}. Received: images=[]")
    ids = list(file_names)
    split = Split(
        [join(image_root, file_names[image_id][0]) for image_id in ids],
        np.asarray([labels[image_id][0] for image_id in ids], dtype=np.int32),
        path,
        [f"images[{file_names[image_id][1]}]" for image_id in ids],
    )
    return split, category_ids, names


def check_files(split, image_root):
    """Raises `FileNotFoundError` naming the first missing image (one directory listing per folder)."""
    by_folder = {}
    for index, path in enumerate(split.paths):
        folder, name = os.path.split(path) if not _is_remote(path) else path.rsplit("/", 1)
        by_folder.setdefault(folder, []).append((name, index))
    missing = []
    for folder, entries in by_folder.items():
        present = _listdir(folder)
        missing += [index for name, index in entries if name not in present]
    if missing:
        missing.sort()
        first = missing[0]
        raise FileNotFoundError(
            f"Expected every image listed in {split.source} to exist under image_root={image_root!r}. "
            f"Received {len(missing)} missing image(s); first: {split.paths[first]} ({split.locations[first]}). "
            "Pass the folder the listed paths are relative to as `image_root`."
        )


def class_names_from_folders(split, image_root, num_classes):
    """Each class's name: the folder of its first training image, less the prefix all classes share.

    `train/n01440764/x.JPEG` gives `n01440764`. Falls back to `str(k)` for classes
    without a training image or when several classes share a folder.
    """
    folders = {}
    for path, label in zip(split.paths, split.labels.tolist()):
        if label not in folders:
            relative = path[len(image_root):] if path.startswith(image_root) else path
            folders[label] = [p for p in re.split(r"[\\/]", relative)[:-1] if p]
    if len(folders) < 2 or len({tuple(f) for f in folders.values()}) != len(folders):
        return [str(k) for k in range(num_classes)]
    common = 0
    parts = list(folders.values())
    while all(len(p) > common + 1 for p in parts) and len({p[common] for p in parts}) == 1:
        common += 1
    return ["/".join(folders[k][common:]) if k in folders else str(k) for k in range(num_classes)]


def check_image_size(image_size):
    image_size = _validation.check_int("image_size", image_size, minimum=8)
    return image_size


def check_batch_size(batch_size):
    if batch_size is None:
        return None
    return _validation.check_int("batch_size", batch_size, minimum=1)


def check_seed(seed):
    if seed is None:
        return None
    return _validation.check_int("seed", seed)


def _crop_window(tf, shape, seed):
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed, min_object_covered=0.0,
        aspect_ratio_range=CROP_ASPECT_RANGE, area_range=CROP_AREA_RANGE, max_attempts=CROP_MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True)
    return begin[0], begin[1], size[0], size[1]


def _center_window(tf, shape):
    height, width = shape[0], shape[1]
    side = tf.cast(tf.round(tf.cast(tf.minimum(height, width), tf.float32) * EVAL_CROP_FRACTION), tf.int32)
    side = tf.maximum(side, 1)
    return (height - side + 1) // 2, (width - side + 1) // 2, side, side


def _decode_window(tf, contents, window_fn):
    """Decodes only the window of a JPEG (`decode_and_crop_jpeg`); other formats are decoded whole, then cut."""

    def jpeg():
        top, left, height, width = window_fn(tf.image.extract_jpeg_shape(contents))
        return tf.image.decode_and_crop_jpeg(contents, tf.stack([top, left, height, width]), channels=3)

    def other():
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)
        top, left, height, width = window_fn(tf.shape(image))
        return image[top:top + height, left:left + width]

    return tf.cond(tf.io.is_jpeg(contents), jpeg, other)


def _finish(tf, image, image_size):
    image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
    image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
    return tf.ensure_shape(image, (image_size, image_size, 3))


def train_image(contents, seed, image_size):
    """Random-resized crop (area 8-100 %, aspect 3/4-4/3) to `image_size`, then a random horizontal flip."""
    tf = _backend.import_tensorflow()
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    image = _decode_window(tf, contents, lambda shape: _crop_window(tf, shape, seeds[0]))
    image = _finish(tf, image, image_size)
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


def eval_image(contents, image_size):
    """The center `EVAL_CROP_FRACTION` square of the image, resized to `image_size` (= resize 256, crop 224)."""
    tf = _backend.import_tensorflow()
    image = _decode_window(tf, contents, lambda shape: _center_window(tf, shape))
    return _finish(tf, image, image_size)


def image_pipeline(dataset, training, batch_size, image_size, seed, input_context, read_files, shuffle_buffer):
    """(path or encoded image, label) -> (float32 image, int32 label), shuffled and augmented when training."""
    tf = _backend.import_tensorflow()

    def contents_of(x):
        return tf.io.read_file(x) if read_files else x

    if training:
        if shuffle_buffer:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        element_seed = None if seed is None else seed + (input_context.input_pipeline_id if input_context else 0)
        seeds = tf.data.Dataset.random(seed=element_seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda xy, s: (train_image(contents_of(xy[0]), s, image_size), xy[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(lambda x, y: (eval_image(contents_of(x), image_size), y),
                              num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        dataset = dataset.batch(batch_size, drop_remainder=training, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if input_context is not None
        else tf.data.experimental.AutoShardPolicy.DATA)
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def file_dataset(split, training, batch_size, image_size, seed, input_context):
    """The pipeline of a split read from image files; with `input_context`, only that pipeline's files."""
    tf = _backend.import_tensorflow()
    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(split.paths, dtype=object).astype(str),
                                                  split.labels))
    size = len(split.paths)
    if input_context is not None:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        size = -(-size // input_context.num_input_pipelines)
    # Only names are shuffled, so the buffer holds the whole (sharded) list: a full shuffle for little memory.
    return image_pipeline(dataset, training, batch_size, image_size, seed, input_context, read_files=True,
                          shuffle_buffer=size)


def check_split_name(split, available):
    if split not in available:
        raise ValueError(f"Expected `split` to be one of {sorted(available)}. Received: split={split!r}")
    return split


def streaming_data(splits, class_names, num_classes, batch_size, image_size, seed):
    """Assembles `StreamingLongTailedData` from a dict of `Split`s (`train`, `test`, optional `val`)."""
    _backend.require_tensorflow_backend("the large-scale loaders (they return tf.data pipelines)")

    def make_dataset(split, batch_size=batch_size, input_context=None, training=None):
        check_split_name(split, splits)
        batch_size = check_batch_size(batch_size)
        training = split == "train" if training is None else bool(training)
        return file_dataset(splits[split], training, batch_size, image_size, seed, input_context)

    counts = np.bincount(splits["train"].labels, minlength=num_classes).tolist()
    return StreamingLongTailedData(
        train=make_dataset("train"),
        test=make_dataset("test"),
        class_counts=counts,
        class_names=list(class_names),
        val=make_dataset("val") if "val" in splits else None,
        shot_splits=shot_splits(counts),
        num_examples={name: len(split.paths) for name, split in splits.items()},
        make_dataset=make_dataset,
    )


def check_paths(data_dir, image_root):
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"Expected `data_dir` to be a path. Received: data_dir={data_dir!r}")
    data_dir = os.fspath(data_dir)
    if image_root is None:
        image_root = data_dir
    elif not isinstance(image_root, (str, os.PathLike)):
        raise TypeError(f"Expected `image_root` to be a path or None. Received: image_root={image_root!r}")
    image_root = os.fspath(image_root)
    if not _is_remote(data_dir) and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"Expected `data_dir` to be a directory. Received: data_dir={data_dir!r}")
    return data_dir, image_root


def load_list_files(prefix, data_dir, image_root, num_classes, batch_size, image_size, seed, check):
    """ImageNet-LT / Places-LT: `<prefix>_{train,val,test}.txt` over `image_root`."""
    _backend.require_tensorflow_backend(f"the {prefix} loader (it returns tf.data pipelines)")
    data_dir, image_root = check_paths(data_dir, image_root)
    num_classes = _validation.check_int("num_classes", num_classes, minimum=2)
    batch_size = check_batch_size(batch_size)
    image_size = check_image_size(image_size)
    seed = check_seed(seed)
    files = {split: join(data_dir, f"{prefix}_{split}.txt") for split in ("train", "val", "test")}
    required = [files["train"], files["test"]]
    absent = [path for path in required if not exists(path)]
    if absent:
        raise FileNotFoundError(f"Expected the {prefix} list files in data_dir={data_dir!r}. Missing: {absent}")
    splits = {split: read_list_file(path, image_root, num_classes)
              for split, path in files.items() if split != "val" or exists(path)}
    if check:
        for split in splits.values():
            check_files(split, image_root)
    names = class_names_from_folders(splits["train"], image_root, num_classes)
    return streaming_data(splits, names, num_classes, batch_size, image_size, seed)
