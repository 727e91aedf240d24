import keras
import numpy as np
import pytest

from keras_longtail.models import resnet50
from tests import helpers

# keras.applications.ResNet50(include_top=False): torchvision's 23,508,032 + 26,560 convolution biases.
BACKBONE_TRAINABLE = 23_534_592
BACKBONE_STATISTICS = 53_120


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def test_architecture_layer_names_and_parameter_count():
    model = resnet50(7, input_shape=(64, 64, 3))
    classifier = model.get_layer("classifier")
    assert isinstance(classifier, keras.layers.Dense) and classifier.units == 7
    assert classifier.activation is keras.activations.linear
    assert isinstance(model.get_layer("features"), keras.layers.GlobalAveragePooling2D)
    assert model.get_layer("features").output.shape == (None, 2048)
    assert _count(model.trainable_weights) == BACKBONE_TRAINABLE + 2048 * 7 + 7
    assert _count(model.non_trainable_weights) == BACKBONE_STATISTICS
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 1 + 16 * 3 + 4  # stem + 16 bottlenecks x 3 + 4 projection shortcuts; + fc = 50 + 4
    x = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    assert model(x).shape == (2, 7)


def test_batch_norm_momentum_and_bad_input():
    model = resnet50(3, input_shape=(32, 32, 3), batch_norm_momentum=0.9)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 53 and all(layer.momentum == 0.9 for layer in norms)
    assert norms[0].get_config()["momentum"] == 0.9  # saved with the model
    with pytest.raises(ValueError, match="num_classes"):
        resnet50(1)
    with pytest.raises(ValueError, match="input_shape"):
        resnet50(3, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        resnet50(3, batch_norm_momentum=1.0)


@pytest.mark.slow  # ~9-12 s: writes and reads 23 M weights
def test_keras_round_trip(tmp_path):
    model = resnet50(4, input_shape=(32, 32, 3), batch_norm_momentum=0.9)
    x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    reloaded = helpers.assert_keras_save_load(model, x, tmp_path, atol=1e-4)
    assert reloaded.get_layer("conv2_block1_2_bn").momentum == 0.9
