import keras
import numpy as np
import pytest

from keras_longtail.models import resnet32
from tests import helpers


def test_architecture():
    model = resnet32(100)
    assert 460_000 < model.count_params() < 480_000  # He et al.: ~0.46-0.47 M
    convs = [layer for layer in model.layers
             if isinstance(layer, keras.layers.Conv2D) and "shortcut" not in layer.name]
    assert len(convs) == 31  # 1 stem + 3 stages x 5 blocks x 2; + classifier = 32 weighted layers
    assert [c.filters for c in convs[1::10]] == [16, 32, 64]
    classifier = model.get_layer("classifier")
    assert isinstance(classifier, keras.layers.Dense) and classifier.units == 100
    assert model.get_layer("features").output.shape == (None, 64)
    assert model.output.shape == (None, 100)


@pytest.mark.slow
def test_other_input_shape_and_save_load(tmp_path):
    model = resnet32(10, input_shape=(28, 28, 1))
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    assert model(x).shape == (2, 10)
    helpers.assert_keras_save_load(model, x, tmp_path, atol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="num_classes"):
        resnet32(1)


def test_batch_norm_momentum_reaches_every_batch_norm():
    model = resnet32(10, input_shape=(16, 16, 3), batch_norm_momentum=0.9)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 1 + 15 * 2 + 2 and all(layer.momentum == 0.9 for layer in norms)
    assert all(layer.momentum == 0.99 for layer in resnet32(10, input_shape=(16, 16, 3)).layers
               if isinstance(layer, keras.layers.BatchNormalization))
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        resnet32(10, batch_norm_momentum=1.0)
