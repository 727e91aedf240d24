"""The test evaluation of `run_training` and the tables `keras-longtail train` prints."""

import math

from keras_longtail.recipes.progress import with_progress


def num_test_examples(loaded):
    """The number of test examples, or `None` when tf.data does not know it."""
    size = int(loaded.test.cardinality())
    return size if size >= 0 else None


def evaluate(network, loaded, verbose=0):
    """((accuracy dict, per-class list), labels, logits) of `network` on the test split."""
    import keras

    labels, logits = [], []
    size = num_test_examples(loaded)
    for images, batch_labels in with_progress(loaded.test.batch(512), size and math.ceil(size / 512), verbose):
        labels.append(batch_labels)
        logits.append(network(images, training=False))
    labels, logits = keras.ops.concatenate(labels, axis=0), keras.ops.concatenate(logits, axis=0)
    return shot_accuracy(loaded.class_counts, labels, logits), labels, logits


def shot_accuracy(class_counts, labels, scores):
    """(accuracy dict in % keyed overall/many/medium/few, per-class accuracy list in %)."""
    from keras_longtail import metrics as lt_metrics

    shot = lt_metrics.ShotAccuracy(class_counts)
    shot.update_state(labels, scores)
    accuracy = {key.split("_", 1)[1]: round(100 * float(value), 2) for key, value in shot.result().items()}
    return accuracy, [round(100 * float(a), 2) for a in shot.per_class()]


def format_shot_table(results):
    """The Many / Medium / Few table printed by `keras-longtail train`."""
    title = (f"{results['dataset']} (imbalance factor {results['imbalance_factor']:g}), "
             f"method {results['method']}, {results['model']}, {results['epochs']} epochs, "
             f"trained in {results['train_seconds']} s; accuracy on the balanced test split")
    rows = [f"{'split':<8} {'classes':>7} {'test accuracy %':>15}"]
    if "rebalanced_accuracy" in results:
        rows[0] += f" {'PN tau=' + format(results['rebalance_tau'], 'g') + ' %':>14}"
    classes = dict(results["shot_classes"], overall=len(results["class_counts"]))
    for split in ("overall", "many", "medium", "few"):
        value = results["accuracy"].get(split)
        shown = f"{value:15.2f}" if value is not None else f"{'absent':>15}"
        if "rebalanced_accuracy" in results:
            value = results["rebalanced_accuracy"].get(split)
            shown += f"{value:15.2f}" if value is not None else f"{'absent':>15}"
        rows.append(f"{split:<8} {classes[split]:>7} {shown}")
    return "\n".join([title, "-" * len(rows[0])] + rows)


def format_depth_table(results):
    """The per-distance-bin MRE table printed by `keras-longtail train --task depth` (GradTail Table 2 columns)."""
    title = (f"{results['dataset']} depth, method {results['method']}, depth_unet x{results['width_multiplier']:g} "
             f"{results['image_size'][0]}x{results['image_size'][1]}, {results['epochs']} epochs, "
             f"{results['train_seconds']} s")
    names = {"mre_lt_20": "<20 m", "mre_20_40": "20-40 m", "mre_40_60": "40-60 m", "mre_gt_60": ">60 m",
             "mre_total": "total"}
    rows = [f"{'MRE %':<8}" + "".join(f"{names.get(k, k):>10}" for k in results["mre"])]
    rows.append(f"{results['method']:<8}" + "".join(f"{v:10.2f}" for v in results["mre"].values()))
    return "\n".join([title, "-" * len(rows[0])] + rows)
