import keras
import numpy as np
import pytest

from keras_longtail import models
from keras_longtail.dual_phase import expand_classifier
from keras_longtail.layers import CosineClassifier


def _cosine_head(units=3):
    inputs = keras.Input((5,))
    features = keras.layers.Dense(4, name="features")(inputs)
    return keras.Model(inputs, CosineClassifier(units, scale=8.0, name="classifier")(features))


def test_dense_columns_move_to_class_ids_and_backbone_is_shared():
    keras.utils.set_random_seed(0)
    head = models.mlp(3, (5,), hidden_units=(4,))
    head.get_layer("classifier").bias.assign([1.0, 2.0, 3.0])
    full = expand_classifier(head, 6, class_ids=[4, 0, 2])
    old = head.get_layer("classifier").get_weights()
    new = full.get_layer("classifier").get_weights()
    np.testing.assert_array_equal(new[0][:, [4, 0, 2]], old[0])
    np.testing.assert_array_equal(new[1], [2.0, 0.0, 3.0, 0.0, 1.0, 0.0])
    assert full.get_layer("hidden1") is head.get_layer("hidden1")
    x = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    np.testing.assert_allclose(full(x).numpy()[:, [4, 0, 2]], head(x).numpy(), rtol=1e-5, atol=1e-6)


def test_cosine_classifier_keeps_scale_and_logits():
    keras.utils.set_random_seed(1)
    head = _cosine_head()
    full = expand_classifier(head, 5)
    layer = full.get_layer("classifier")
    assert isinstance(layer, CosineClassifier) and layer.units == 5 and layer.scale == 8.0
    x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    np.testing.assert_allclose(full(x).numpy()[:, :3], head(x).numpy(), rtol=1e-5, atol=1e-5)


def test_bad_input():
    head = models.mlp(3, (5,))
    with pytest.raises(ValueError, match="num_classes"):
        expand_classifier(head, 2)
    with pytest.raises(ValueError, match="class_ids"):
        expand_classifier(head, 5, class_ids=[0, 0, 1])
    with pytest.raises(ValueError, match="class_ids"):
        expand_classifier(head, 5, class_ids=[0, 1, 5])
    with pytest.raises(ValueError, match="layer_name"):
        expand_classifier(head, 5, layer_name="head")
    with pytest.raises(TypeError, match="model"):
        expand_classifier("model", 5)
    with pytest.raises(ValueError, match="only output"):
        expand_classifier(head, 5, layer_name="hidden1")
