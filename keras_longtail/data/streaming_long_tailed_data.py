"""What the large-scale (streaming) loaders return."""

import typing


class StreamingLongTailedData(typing.NamedTuple):
    """Streaming long-tailed splits (ImageNet-LT, Places-LT, iNaturalist) and their metadata.

    The large-scale counterpart of `LongTailedData`: the first four fields are the
    same (`train, test, class_counts, class_names`), but the datasets are
    `tf.data` pipelines that read and decode image files as they go, so nothing but
    the file names and labels is held in memory.

    Attributes:
        train: `tf.data.Dataset` of `(image, label)`: float32 images in [0, 1] of
            shape `(image_size, image_size, 3)` after a random-resized crop and a
            random horizontal flip, int32 labels; the file list is reshuffled every
            epoch. Batched with `drop_remainder=True` when the loader got a
            `batch_size` (static shapes, as TPUs and XLA need), unbatched otherwise.
        test: the balanced evaluation split (ImageNet-LT / Places-LT test, iNaturalist
            2018 val), resized so the shorter side is `image_size / 0.875` and
            center-cropped; in file order; batched without dropping the remainder.
        class_counts: list of per-class training counts (from the list file or
            annotations, not from reading images).
        class_names: list of class names (index = label).
        val: the validation split (ImageNet-LT / Places-LT val) processed like
            `test`, or `None` where the data set has none.
        shot_splits: `ShotSplits(many, medium, few)` of `class_counts` with the
            usual thresholds (> 100, 20..100, < 20 training images).
        num_examples: dict of split name (`"train"`, `"val"`, `"test"`) to its
            number of examples, e.g. for `steps_per_epoch`.
        make_dataset: `make_dataset(split, batch_size=None, input_context=None,
            training=None)` builds one split's pipeline again. With a
            `tf.distribute.InputContext` it reads only that input pipeline's share of
            the files (file sharding, auto-sharding off); use it inside
            `strategy.distribute_datasets_from_function` (add `.repeat()` and give
            `fit` `steps_per_epoch=num_train // global_batch`: Keras cannot count
            the batches of a distributed dataset). `training` defaults to
            `split == "train"` and selects the augmentation.

    Without an input context the datasets carry
    `tf.data.experimental.AutoShardPolicy.DATA`, so
    `strategy.experimental_distribute_dataset` splits the elements between workers;
    every worker then reads every file, and must shuffle identically (pass the same
    `seed` on every worker). File sharding through `make_dataset` avoids both.

    Example:

    ```python
    data = load_imagenet_lt("/data/ImageNet_LT", image_root="/data/imagenet", batch_size=256)
    data.num_classes, data.num_train  # (1000, 115846)
    model.fit(data.train, validation_data=data.val, epochs=90)
    ```
    """

    train: typing.Any
    test: typing.Any
    class_counts: list
    class_names: list
    val: typing.Any
    shot_splits: typing.Any
    num_examples: dict
    make_dataset: typing.Callable

    @property
    def num_classes(self):
        """Number of classes."""
        return len(self.class_counts)

    @property
    def num_train(self):
        """Number of training examples."""
        return int(sum(self.class_counts))
