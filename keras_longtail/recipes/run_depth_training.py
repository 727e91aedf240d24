"""`run_depth_training`: the monocular-depth experiment, the job behind `keras-longtail train --task depth`."""

import time

from keras_longtail._internal.defaults import GRADTAIL_DEPTH_PIVOT
from keras_longtail._internal.defaults import GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT
from keras_longtail.recipes.defaults import DEPTH_BATCH_SIZE
from keras_longtail.recipes.defaults import DEPTH_DATASET_DEFAULTS
from keras_longtail.recipes.defaults import DEPTH_DATASETS
from keras_longtail.recipes.defaults import DEPTH_METHODS
from keras_longtail.recipes.defaults import SYNTHETIC_DEPTH_SCENES


def run_depth_training(dataset="synthetic-depth", method="ce", data_dir=None, epochs=None, batch_size=DEPTH_BATCH_SIZE,
                       learning_rate=None, steps_per_epoch=None, image_size=None, width_multiplier=None,
                       train_scenes=SYNTHETIC_DEPTH_SCENES["train_scenes"],
                       test_scenes=SYNTHETIC_DEPTH_SCENES["test_scenes"], far_probability=0.15, gradtail_pivot=GRADTAIL_DEPTH_PIVOT,
                       gradtail_max_weight=GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT, seed=0, verbose=2, save_model=None):
    """Trains `depth_unet` on monocular depth as `keras-longtail train --task depth` does; returns the results.

    `dataset="waymo"` reads the Waymo Open Dataset v2 Parquet components of
    `data_dir` (`training/` to train, `validation/` to test) through
    `load_waymo_depth` at 192×480 with the full-width network (the paper's
    setting: batch 10, Adam at a constant 2e-4); `"synthetic-depth"` renders
    `synthetic_depth_scenes` (a rare far range) at 128×320 with a half-width
    network and lr 1e-3, so that a CPU reaches a meaningful error in minutes.
    `method="ce"` is the baseline, `MaskedL1` (ℓ1 on the pixels with ground
    truth); `method="gradtail"` is the paper's configuration, `gradtail_depth`
    (biases of `decoder_up_1` and `decoder_up_2`, the 6 + 1 random patches,
    max weight `gradtail_max_weight`, pivot `gradtail_pivot`) trained on the
    per-pixel ℓ1 with the ground-truth mask as `sample_weight`.

    Returns:
        A JSON-serializable dict: the configuration, `mre` (mean relative error
        in % per ground-truth distance bin < 20, 20-40, 40-60, > 60 m and total,
        `BinnedMeanRelativeError`), `test_masked_l1` (metres, the mean over test
        images of `MaskedL1`), `test_pixel_share_percent` (test pixels with
        ground truth per bin), `train_loss` per epoch and `train_seconds`.

    Example:

    ```python
    results = run_depth_training("synthetic-depth", method="gradtail", epochs=12)
    results["mre"]["mre_gt_60"]
    ```
    """
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_longtail
    from keras_longtail._internal import validation as _validation
    from keras_longtail import data as lt_data
    from keras_longtail import losses as lt_losses
    from keras_longtail import metrics as lt_metrics
    from keras_longtail import models as lt_models
    from keras_longtail import training as lt_training

    if dataset not in DEPTH_DATASETS:
        raise ValueError(f"Expected `dataset` in {list(DEPTH_DATASETS)}. Received: dataset={dataset!r}")
    if method not in DEPTH_METHODS:
        raise ValueError(f"Expected `method` in {list(DEPTH_METHODS)} (ce = masked L1). Received: method={method!r}")
    synthetic = dataset == "synthetic-depth"
    defaults = DEPTH_DATASET_DEFAULTS[dataset]
    epochs = defaults["epochs"] if epochs is None else epochs
    learning_rate = defaults["learning_rate"] if learning_rate is None else learning_rate
    image_size = tuple(defaults["image_size"] if image_size is None else image_size)
    width_multiplier = defaults["width_multiplier"] if width_multiplier is None else width_multiplier
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("train_scenes", train_scenes),
                        ("test_scenes", test_scenes)):
        if value < 1:
            raise ValueError(f"Expected `{name}` >= 1. Received: {name}={value}")
    keras_longtail._import_namespaces()
    _validation.check_float("learning_rate", learning_rate, minimum=0.0, min_inclusive=False)
    _validation.check_float("width_multiplier", width_multiplier, minimum=0.0, min_inclusive=False)
    _validation.check_float("gradtail_max_weight", gradtail_max_weight, minimum=0.0, min_inclusive=False)
    _validation.check_float("far_probability", far_probability, minimum=0.0, maximum=1.0)
    _validation.check_int("seed", seed, minimum=0)
    if len(image_size) != 2 or any(not isinstance(v, int) or v < 32 or v % 32 for v in image_size):
        raise ValueError(f"Expected `image_size` to be two positive multiples of 32. Received: "
                         f"image_size={image_size}")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError(f"Expected `steps_per_epoch` >= 1. Received: steps_per_epoch={steps_per_epoch}")
    keras.utils.set_random_seed(seed)

    if synthetic:
        train = lt_data.synthetic_depth_scenes(train_scenes, image_size, far_probability=far_probability, seed=seed)
        test = lt_data.synthetic_depth_scenes(test_scenes, image_size, far_probability=far_probability,
                                              seed=seed + 10_000)
        train = train.cache().shuffle(train_scenes, seed=seed)
    else:
        if data_dir is None:
            raise ValueError("--dataset waymo needs --data-dir: the folder holding the Waymo Open Dataset v2 "
                             "Parquet splits training/ and validation/ (camera_image, camera_calibration, lidar, "
                             "lidar_calibration, lidar_camera_projection), read with pyarrow "
                             '(pip install "keras-longtail[waymo]"); or use --dataset synthetic-depth. '
                             "Received: data_dir=None")
        train = lt_data.load_waymo_depth(data_dir, "training", image_size=image_size)
        test = lt_data.load_waymo_depth(data_dir, "validation", image_size=image_size)
        train = train.shuffle(512, seed=seed)
    if steps_per_epoch is not None:
        train = train.repeat()
    train = train.batch(batch_size, drop_remainder=True)

    network = lt_models.depth_unet(image_size + (3,), width_multiplier=width_multiplier)
    if method == "gradtail":
        network = lt_training.gradtail_depth(network, pivot=gradtail_pivot, max_weight=gradtail_max_weight,
                                             seed=seed)
        loss = keras.losses.MeanAbsoluteError(reduction="mean_with_sample_weight")
        train = lt_data.with_ground_truth_mask(train)
    else:
        loss = lt_losses.MaskedL1()
    network.compile(keras.optimizers.Adam(learning_rate), loss=loss)
    start = time.perf_counter()
    history = network.fit(train.prefetch(tf.data.AUTOTUNE), epochs=epochs, steps_per_epoch=steps_per_epoch,
                          shuffle=False, verbose=verbose)
    train_seconds = time.perf_counter() - start
    if save_model:
        network.save(save_model)

    mre = lt_metrics.BinnedMeanRelativeError()
    masked_l1 = lt_losses.MaskedL1(reduction=None)
    per_image, counts = [], np.zeros(len(mre.bins) + 1)
    for images, depths in test.batch(batch_size):
        predictions = network(images, training=False)
        mre.update_state(depths, predictions)
        per_image.append(np.asarray(masked_l1(depths, predictions)))
        valid = depths.numpy()[depths.numpy() > 0]
        counts += np.histogram(valid, bins=[0.0, *mre.bins, np.inf])[0]
    result = {
        "task": "depth",
        "dataset": dataset,
        "method": method,
        "model": "depth_unet",
        "width_multiplier": width_multiplier,
        "image_size": list(image_size),
        "epochs": epochs,
        "batch_size": batch_size,
        "steps_per_epoch": steps_per_epoch,
        "learning_rate": learning_rate,
        "optimizer": "Adam, constant learning rate",
        "seed": seed,
        "loss": "MaskedL1" if method == "ce" else "per-pixel L1, ground-truth mask as sample_weight",
        "mre": {k: round(float(v), 3) for k, v in mre.result().items()},
        "test_masked_l1": round(float(np.concatenate(per_image).mean()), 4),
        "test_pixel_share_percent": {name: round(float(100 * c / max(counts.sum(), 1)), 2)
                                     for name, c in zip(mre.bin_names(), counts)},
        "train_loss": [round(float(v), 4) for v in history.history["loss"]],
        "train_seconds": round(train_seconds, 1),
    }
    if synthetic:
        result.update(train_scenes=train_scenes, test_scenes=test_scenes, far_probability=far_probability)
    else:
        result["data_dir"] = str(data_dir)
    if method == "gradtail":
        result.update(gradtail_pivot=gradtail_pivot, gradtail_max_weight=gradtail_max_weight,
                      gradtail_variables=[v.path for v in network.gradtail_variables],
                      gradtail_patches=keras.saving.serialize_keras_object(network.patches)["config"],
                      gradtail_path=network.gradtail_resolved_path,
                      gradtail_mean_weight=[round(float(v), 4) for v in history.history["gradtail_mean_weight"]])
    return result
