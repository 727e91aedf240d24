"""Tiny image trees and list files in the formats of ImageNet-LT, Places-LT and iNaturalist, for the loader tests."""

import numpy as np
import tensorflow as tf

STEP = 12  # red level of image i is 10 + STEP * i: identifies an image after cropping, resizing and JPEG


def red_level(i):
    return 10 + STEP * i


def image_index(image):
    """Which written image a (solid-colour) decoded image came from."""
    return int(round((float(np.mean(image[..., 0])) * 255 - 10) / STEP))


def write_image(path, i, height=30, width=40, fmt="jpeg"):
    """A solid image whose red level encodes `i` (green/blue fixed), as JPEG or PNG bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = red_level(i), 128, 200
    encode = tf.io.encode_jpeg if fmt == "jpeg" else tf.io.encode_png
    path.write_bytes(encode(tf.constant(pixels)).numpy())


def write_list(path, entries, root=None, extra_lines=()):
    """Writes `<path> <label>` lines; `extra_lines` maps a 1-based line number to raw text inserted there."""
    lines = [f"{name} {label}" for name, label in entries]
    for number, text in sorted(dict(extra_lines).items()):
        lines.insert(number - 1, text)
    path.write_text("\n".join(lines) + "\n")


def write_imagenet_lt(root, counts=(6, 3, 1), val_per_class=1, test_per_class=2, prefix="ImageNet_LT",
                      folder=lambda k: f"train/n{k:08d}"):
    """ImageNet-LT-style tree under `root`; returns {split: [(relative path, label), ...]} in list order.

    Every image across all splits gets its own red level (train first, then val, then test).
    """
    entries, index = {"train": [], "val": [], "test": []}, 0
    for split, per_class in (("train", None), ("val", val_per_class), ("test", test_per_class)):
        for k, count in enumerate(counts):
            for j in range(count if per_class is None else per_class):
                name = (f"{folder(k)}/{k}_{j}.JPEG" if split == "train" else f"{split}/{split}_{k}_{j}.JPEG")
                write_image(root / name.lstrip("/"), index)
                entries[split].append((name, k))
                index += 1
    for split, items in entries.items():
        write_list(root / f"{prefix}_{split}.txt", items)
    return entries


def write_inaturalist_json(root, counts=(5, 2, 1), val_per_class=2, category_ids=(0, 1, 2),
                           names=("Aa bb", "Cc dd", "Ee ff"), reverse_annotations=True):
    """`train2018.json` / `val2018.json` in iNaturalist's COCO style, with the images under `train_val2018/`.

    Returns {split: [(file_name, label), ...]} in `images` order. Image ids run against that order, and with
    `reverse_annotations` so do the annotations, so a loader that matched them by position would fail (the real
    files, and tensorflow-datasets' builder, have them aligned).
    """
    import json

    entries, index = {"train": [], "val": []}, 0
    for split, per_class in (("train", None), ("val", val_per_class)):
        images, annotations = [], []
        for k, count in enumerate(counts):
            for j in range(count if per_class is None else per_class):
                file_name = f"train_val2018/Plantae/{category_ids[k]}/{split}_{k}_{j}.jpg"
                write_image(root / file_name, index)
                image_id = 1000 - index
                images.append({"id": image_id, "file_name": file_name, "width": 40, "height": 30})
                annotations.append({"id": index, "image_id": image_id, "category_id": category_ids[k]})
                entries[split].append((file_name, k))
                index += 1
        if reverse_annotations:
            annotations.reverse()
        categories = [{"id": c, "name": n, "supercategory": "Plantae"} for c, n in zip(category_ids, names)]
        (root / f"{split}2018.json").write_text(json.dumps(
            {"info": {}, "images": images, "annotations": annotations, "categories": categories}))
    return entries
