"""Places-LT (Liu et al., 2019), streamed from the original list files."""

from keras_longtail.data import _large_scale


def load_places_lt(data_dir, image_root=None, batch_size=None, image_size=224, num_classes=365, seed=None,
                   check_files=True):
    """Streams Places-LT: 62,500 long-tailed training images of 365 scene classes.

    Places-LT (Liu et al., 2019) keeps between 4,980 and 5 training images per
    class of Places-365-Standard; its validation split has 20 images per class and
    its test split 100 per class (36,500), drawn from Places-365's validation set.

    The splits are the list files of the OLTR release, `Places_LT_train.txt`,
    `Places_LT_val.txt` (optional) and `Places_LT_test.txt` in `data_dir`, one
    `<relative image path> <integer label>` per line, the paths relative to
    `image_root` (a leading `/` is ignored). Class names are the folder of each
    class's first training image, less the part all classes share (`a/abbey`).

    Checks, pipelines and errors are those of `load_imagenet_lt`: metadata errors
    (file and line named) before anything is read, missing images up front with
    `check_files=True` or at first read otherwise; training images random-resized
    crop + flip, evaluation images resize + center crop; float32 in [0, 1].

    Args:
        data_dir: folder holding the `Places_LT_*.txt` list files.
        image_root: folder the listed paths are relative to. Defaults to `data_dir`.
        batch_size: batch size of the returned datasets (training batches drop the
            remainder), or `None` for unbatched datasets. Defaults to `None`.
        image_size: side of the square output images, >= 8. Defaults to 224.
        num_classes: number of classes; every label must lie in [0, num_classes).
            Defaults to 365.
        seed: integer seed of the shuffling and augmentation, or `None`.
            Defaults to `None`.
        check_files: check up front that every listed image exists.
            Defaults to `True`.

    Returns:
        A `StreamingLongTailedData(train, test, class_counts, class_names, val,
        shot_splits, num_examples, make_dataset)`.

    Raises:
        FileNotFoundError: `data_dir`, a required list file or a listed image is missing.
        ValueError: a malformed line or a label out of range (file and line named).

    Example:

    ```python
    data = load_places_lt("/data/Places_LT", image_root="/data/places365_standard", batch_size=128)
    data.num_train, data.num_examples["test"]  # 62500, 36500
    model = keras_longtail.models.resnet50(data.num_classes)
    model.fit(data.train, validation_data=data.val, epochs=30)
    ```

    References:
        - Liu et al., "Large-Scale Long-Tailed Recognition in an Open World",
          CVPR 2019, arXiv:1904.05160.
    """
    return _large_scale.load_list_files("Places_LT", data_dir, image_root, num_classes, batch_size, image_size,
                                        seed, check_files)
