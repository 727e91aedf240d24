"""The paper's random patches (plus the uncovered pixels) for dense regression."""

import keras

from keras_longtail._internal import backend as _backend
from keras_longtail._internal import validation as _validation
from keras_longtail.gradtail.patch_strategy import PatchStrategy


@keras.saving.register_keras_serializable(package="keras_longtail")
class RandomPatches(PatchStrategy):
    """`num_patches` random square patches and one patch of the pixels none of them covers.

    GradTail §4.3: six patches whose side is drawn uniformly from
    [`min_size`, `max_size`] pixels (clipped to the image) at a uniform random
    position fully inside the image, plus a seventh patch made of every pixel
    outside all six, so that every pixel keeps a training signal. Patches may
    overlap; the uncovered patch may be empty (it then carries no weight).

    The draw is a stateless function of (`seed`, training step): one set of
    patches per step, shared by the whole batch and identical on every
    replica, so a `tf.distribute` run sees the patches a single device does
    and the step compiles with XLA. It is a 32-bit integer hash in int64
    arithmetic, so the patches are also the same with and without
    `jit_compile` and on CPU, GPU and TPU (TensorFlow's stateless random ops
    are not: XLA's Philox draws other numbers than TensorFlow's kernel).

    Args:
        num_patches: number of random patches, >= 1. Defaults to `6`.
        min_size: smallest patch side in pixels, >= 1. Defaults to `20`.
        max_size: largest patch side in pixels, >= `min_size`. Defaults to `100`.
        include_uncovered: add the patch of uncovered pixels. Defaults to `True`.
        seed: integer seed of the draws. Defaults to `0`.

    Example:

    >>> masks = RandomPatches(num_patches=2, min_size=2, max_size=3).masks(5, 6, step=0)
    >>> tuple(masks.shape)
    (3, 5, 6)
    >>> bool((masks[:2].numpy().max(axis=0) + masks[2].numpy() == 1).all())  # uncovered = the rest
    True

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using
          Gradient-based Sample Weighting", arXiv:2201.05938 (2022).
    """

    def __init__(self, num_patches=6, min_size=20, max_size=100, include_uncovered=True, seed=0):
        self.num_patches = _validation.check_int("num_patches", num_patches, minimum=1)
        self.min_size = _validation.check_int("min_size", min_size, minimum=1)
        self.max_size = _validation.check_int("max_size", max_size, minimum=self.min_size)
        if not isinstance(include_uncovered, bool):
            raise TypeError(f"Expected `include_uncovered` to be a bool. Received: include_uncovered={include_uncovered!r}")
        self.include_uncovered = include_uncovered
        self.seed = _validation.check_int("seed", seed)
        self.num_masks = self.num_patches + int(include_uncovered)

    def masks(self, height, width, step):
        tf = _backend.import_tensorflow()
        draws = tf.reshape(_uniform(self.seed, step, 3 * self.num_patches), (3, self.num_patches))  # side, top, left
        side = self.min_size + tf.cast(tf.floor(draws[0] * (self.max_size - self.min_size + 1)), tf.int32)
        patch_h, patch_w = tf.minimum(side, height), tf.minimum(side, width)
        top = tf.cast(tf.floor(draws[1] * tf.cast(height - patch_h + 1, tf.float32)), tf.int32)
        left = tf.cast(tf.floor(draws[2] * tf.cast(width - patch_w + 1, tf.float32)), tf.int32)
        rows = tf.range(height)[None, :]
        cols = tf.range(width)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < (top + patch_h)[:, None])  # (K, H)
        in_cols = (cols >= left[:, None]) & (cols < (left + patch_w)[:, None])  # (K, W)
        masks = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)
        if self.include_uncovered:
            masks = tf.concat([masks, (1.0 - tf.reduce_max(masks, axis=0))[None]], axis=0)
        return masks

    def get_config(self):
        return {"num_patches": self.num_patches, "min_size": self.min_size, "max_size": self.max_size,
                "include_uncovered": self.include_uncovered, "seed": self.seed}


_MASK32 = 0xFFFFFFFF


def _hash32(z):
    """A 32-bit integer hash (two multiply-xorshift rounds) of int64 tensors that hold 32-bit values."""
    tf = _backend.import_tensorflow()
    for _ in range(2):
        z = tf.bitwise.bitwise_and(tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, 16)) * 0x45D9F3B, _MASK32)
    return tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, 16))


def _uniform(seed, step, count):
    """`count` numbers in [0, 1) from (`seed`, `step`), in int64 arithmetic only: the same on every device,
    compiled by XLA or not (products stay below 2^59)."""
    tf = _backend.import_tensorflow()
    key = _hash32(tf.constant(int(seed) & _MASK32, tf.int64))
    key = _hash32(tf.bitwise.bitwise_xor(key, tf.bitwise.bitwise_and(tf.cast(step, tf.int64), _MASK32)))
    counters = tf.bitwise.bitwise_and(key + tf.range(1, count + 1, dtype=tf.int64) * 0x9E3779B9, _MASK32)
    return tf.cast(tf.bitwise.right_shift(_hash32(counters), 8), tf.float32) / float(1 << 24)  # exact in float32
