"""Base class of the dense-output groupings GradTail weights as pseudo-examples."""

import keras


@keras.saving.register_keras_serializable(package="keras_longtail")
class PatchStrategy:
    """Groups the pixels of a dense output into patches, each one GradTail pseudo-example.

    For dense regression (depth, segmentation) GradTail does not weight single
    pixels: it takes per-pixel losses ℓ_bhw (masked where there is no ground
    truth, through a per-pixel `sample_weight` w_bhw), groups them with K
    masks M_k (values in {0, 1}, shape (H, W)) and treats every patch mean

    L_bk = Σ_hw M_khw·w_bhw·ℓ_bhw / Σ_hw M_khw·w_bhw    (0 if the patch holds no weight)

    as one example (effective batch K·B). A subclass implements
    `masks(height, width, step)` returning a float32 tensor (K, H, W) that
    depends only on its arguments (so that every replica of a
    `tf.distribute` step draws the same patches), and sets `num_masks` = K.

    Example:

    ```python
    model = GradTailModel(inputs, depth, patches=RandomPatches(), gradient_layers=["up1", "up2"])
    model.compile("adam", loss=keras.losses.MeanAbsoluteError(reduction=None))
    model.fit(images, depths, sample_weight=has_lidar)  # per-pixel 0/1 mask
    ```
    """

    num_masks = None

    def masks(self, height, width, step):
        raise NotImplementedError(f"{type(self).__name__} must implement `masks(height, width, step)`.")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
