"""Per-example GradTail agreement θ over a data set."""

import numpy as np

import keras

from keras_longtail._internal import backend as _backend


def gradtail_scores(model, data, batch_size=256, training=False, return_weights=False):
    """θ(x) = cos(∇L(x), w̃) for every (pseudo-)example of `data`, with the model's current GradTail state.

    The paper's analysis (Fig. 3) splits examples into "hard" (θ below a band
    around the pivot), "rare" (inside it, e.g. [−0.07, 0.07]) and "common"
    (above). The state (w̃, σ) is read, never updated.

    Args:
        model: a built GradTail model (`GradTailModel` or a `GradTailMixin` subclass).
        data: a `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`
            batches, or a tuple `(x, y)` / `(x, y, sample_weight)` of arrays.
        batch_size: batch size for array inputs. Defaults to `256`.
        training: run the model in training mode (batch norm on batch
            statistics, dropout on). Defaults to `False`.
        return_weights: also return the weights q the next training step
            would give. Defaults to `False`.

    Returns:
        float32 numpy array of θ, shape (N,) (or (N, K) with `patches`); with
        `return_weights`, a tuple `(theta, weights)`.

    Example:

    ```python
    theta = gradtail_scores(model, (x, y))
    rare = np.abs(theta) <= 0.07; hard = theta < -0.07; common = theta > 0.07
    ```
    """
    tf = _backend.import_tensorflow()
    if not hasattr(model, "gradtail_batch_scores"):
        raise TypeError(f"Expected `model` to be a GradTail model. Received: model={type(model).__name__}")
    if isinstance(data, tuple):
        data = tf.data.Dataset.from_tensor_slices(data).batch(batch_size)
    model.gradtail_build()
    step = tf.function(lambda x, y, w: model.gradtail_batch_scores(x, y, w, training=training),
                       reduce_retracing=True)
    thetas, weights = [], []
    patches = getattr(model, "patches", None)
    for batch in data:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        theta, weight = step(x, y, sample_weight)
        if patches is not None:
            theta = tf.reshape(theta, [-1, patches.num_masks])
            weight = tf.reshape(weight, [-1, patches.num_masks])
        thetas.append(theta.numpy())
        weights.append(weight.numpy())
    theta, weight = np.concatenate(thetas), np.concatenate(weights)
    return (theta, weight) if return_weights else theta
