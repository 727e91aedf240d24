"""GradTail for monocular depth: the paper's configuration on a depth network's decoder biases."""

from keras_longtail._internal import validation as _validation
from keras_longtail._internal.defaults import GRADTAIL_DEPTH_PIVOT
from keras_longtail._internal.defaults import GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT
from keras_longtail.gradtail.gradtail_model import GradTailModel
from keras_longtail.gradtail.gradtail_sigmoid import GradTailSigmoid
from keras_longtail.gradtail.patch_strategy import PatchStrategy
from keras_longtail.gradtail.random_patches import RandomPatches

DECODER_BIAS_LAYERS = ("decoder_up_1", "decoder_up_2")


def gradtail_depth(network, bias_layers=DECODER_BIAS_LAYERS, pivot=GRADTAIL_DEPTH_PIVOT,
                   max_weight=GRADTAIL_TOY_AND_DEPTH_MAX_WEIGHT, decay=0.99, patches=None, seed=0):
    """Wraps a functional depth network in GradTail with the paper's dense-regression configuration.

    GradTail §4.3 and App. B.3: the gradient agreement θ is computed on the
    biases of the decoder's first two upsampling layers only, for
    pseudo-examples that are patches of the per-pixel loss (six random squares
    with sides in [20, 100] px plus the patch of uncovered pixels:
    `RandomPatches()`), with maximum weight M = 15 and pivot p = −0.5 (the best
    pivot of Table 2). Per pseudo-example L_bk (the masked mean of the
    per-pixel loss over patch k of image b),

    q_bk = 1 + 2(M − 1)·sigmoid(−5·|θ_bk/σ − p|),   loss = Σ_bk q_bk·s_bk·L_bk / (K·B)

    with s_bk the share of patch k's pixels that have ground truth (see
    `GradTailMixin`). The per-pseudo-example bias gradients are exact and come
    from the `"bias"` gradient path (one vectorized backward pass per patch).

    Compile the result with a per-pixel loss and fit it on
    `(image, depth, mask)` with the 0/1 ground-truth mask as `sample_weight`
    (`keras_longtail.data.with_ground_truth_mask`); `keras.losses.MeanAbsoluteError(
    reduction="mean_with_sample_weight")` is the masked ℓ1 of App. B.3 (its
    reduction applies to `evaluate`; training uses GradTail's objective above).

    Args:
        network: a functional depth model, e.g. `keras_longtail.models.depth_unet()`.
        bias_layers: names of the layers whose biases are selected. Defaults to
            `("decoder_up_1", "decoder_up_2")`.
        pivot: p. Defaults to `GRADTAIL_DEPTH_PIVOT` (-0.5, the paper's best in Table 2).
        max_weight: M, >= 1. Defaults to `15.0`.
        decay: λ of the running means, in [0, 1). Defaults to `0.99`.
        patches: a `PatchStrategy`, or `None` for `RandomPatches(seed=seed)`
            (6 patches of 20-100 px plus the uncovered pixels). Defaults to `None`.
        seed: seed of the default patches. Defaults to `0`.

    Returns:
        A `GradTailModel` sharing `network`'s layers and weights.

    Example:

    >>> import keras
    >>> from keras_longtail import data, models
    >>> model = gradtail_depth(models.depth_unet((64, 160, 3), width_multiplier=0.25))
    >>> model.gradtail_resolved_path, [v.path for v in model.gradtail_variables]
    ('bias', ['decoder_up_1/bias', 'decoder_up_2/bias'])
    >>> model.compile(keras.optimizers.Adam(2e-4),
    ...               loss=keras.losses.MeanAbsoluteError(reduction="mean_with_sample_weight"))
    >>> scenes = data.synthetic_depth_scenes(4, image_size=(64, 160))
    >>> history = model.fit(data.with_ground_truth_mask(scenes.batch(2)), verbose=0)
    >>> int(model.gradtail_step.numpy())
    2

    References:
        - Chen et al., "GradTail: Learning Long-Tailed Data Using
          Gradient-based Sample Weighting", arXiv:2201.05938 (2022).
    """
    if isinstance(bias_layers, str) or not isinstance(bias_layers, (list, tuple)) or not bias_layers:
        raise TypeError(f"Expected `bias_layers` to be a non-empty list of layer names. "
                        f"Received: bias_layers={bias_layers!r}")
    names = [layer.name for layer in network.layers]
    biases = []
    for name in bias_layers:
        if name not in names:
            raise ValueError(f"Expected `bias_layers` to name layers of the network. Received: {name!r}; "
                             f"layers: {names}")
        bias = getattr(network.get_layer(name), "bias", None)
        if bias is None:
            raise ValueError(f"Expected every layer in `bias_layers` to have a bias. Received: {name!r} (no bias)")
        biases.append(bias)
    max_weight = _validation.check_float("max_weight", max_weight, minimum=1.0)
    if patches is None:
        patches = RandomPatches(seed=seed)
    if not isinstance(patches, PatchStrategy):
        raise TypeError(f"Expected `patches` to be a PatchStrategy or None. Received: patches={patches!r}")
    return GradTailModel.from_model(network, gradient_variables=biases, pivot=pivot, decay=decay,
                                    activation=GradTailSigmoid(max_weight=max_weight), patches=patches)
