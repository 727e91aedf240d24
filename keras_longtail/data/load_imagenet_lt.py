"""ImageNet-LT (Liu et al., 2019), streamed from the original list files."""

from keras_longtail.data import _large_scale


def load_imagenet_lt(data_dir, image_root=None, batch_size=None, image_size=224, num_classes=1000, seed=None,
                     check_files=True):
    """Streams ImageNet-LT: 115,846 long-tailed training images, balanced val and test splits.

    ImageNet-LT (Liu et al., 2019) keeps n_k of the ImageNet-2012 training images
    of class k, n_k following a Pareto profile from 1,280 down to 5; the 20,000
    validation images (20 per class) are also drawn from the ImageNet training set
    and the 50,000 test images are ImageNet's validation set (50 per class).

    The splits are the list files of the OLTR release, `ImageNet_LT_train.txt`,
    `ImageNet_LT_val.txt` (optional) and `ImageNet_LT_test.txt` in `data_dir`, one
    `<relative image path> <integer label>` per line (`train/n01440764/n01440764_190.JPEG 0`),
    the paths relative to `image_root`. Class names are the folder of each class's
    first training image (the WordNet ids for the standard layout).

    All metadata is checked before a pipeline is built: a malformed line or a label
    outside [0, num_classes) raises `ValueError` naming the list file and line
    number; with `check_files=True` every listed image must exist (one directory
    listing per folder; ~2 s for the 1.28 M entries of ImageNet's training
    folders on a warm local disk, estimated from 0.2 s for 130 k), otherwise a
    `FileNotFoundError` names the first missing file and its line. With
    `check_files=False` (e.g. on a bucket where listings are slow) a missing image
    fails when it is first read, with TensorFlow's `NotFoundError` naming the file.

    The pipelines read and decode in parallel (`tf.data.AUTOTUNE`); JPEGs are
    decoded only inside their crop window. Training: the whole file list reshuffled
    every epoch, a random-resized crop (8-100 % of the area, aspect ratio 3/4-4/3,
    as torchvision's `RandomResizedCrop`) resized to `image_size`, a random
    horizontal flip, seeded per element from `seed`. Evaluation: resize the shorter
    side to `image_size / 0.875` (256 for 224) and center-crop `image_size`.
    Images are float32 in [0, 1]; normalize inside the model if you want to.
    For several workers or TPU hosts see `StreamingLongTailedData.make_dataset`.

    Paths may be local or any filesystem TensorFlow reads (`gs://...`).

    Args:
        data_dir: folder holding the `ImageNet_LT_*.txt` list files.
        image_root: folder the listed paths are relative to (the one holding
            `train/` and `val/` of ImageNet-2012). Defaults to `data_dir`.
        batch_size: batch size of the returned datasets (training batches drop the
            remainder), or `None` for unbatched datasets. Defaults to `None`.
        image_size: side of the square output images, >= 8. Defaults to 224.
        num_classes: number of classes; every label must lie in [0, num_classes).
            Defaults to 1000.
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
    data = load_imagenet_lt("/data/ImageNet_LT", image_root="/data/imagenet", batch_size=256, seed=0)
    data.num_train, data.num_examples["test"]  # 115846, 50000
    model = keras_longtail.models.resnext50(data.num_classes)
    model.fit(data.train, validation_data=data.val, epochs=90)
    ```

    References:
        - Liu et al., "Large-Scale Long-Tailed Recognition in an Open World",
          CVPR 2019, arXiv:1904.05160.
    """
    return _large_scale.load_list_files("ImageNet_LT", data_dir, image_root, num_classes, batch_size, image_size,
                                        seed, check_files)
