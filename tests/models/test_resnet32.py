import keras
import numpy as np
import pytest

from keras_longtail.models import resnet32
from keras_longtail.models.resnet32 import ZeroPadShortcut
from tests import helpers


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_architecture_matches_the_ldam_reference():
    model = resnet32(10)
    assert _trainable(model) == 464_154  # the LDAM-DRW PyTorch resnet32(num_classes=10): sum of p.numel()
    assert _trainable(resnet32(100)) == 464_154 + 64 * 90 + 90
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 31  # 1 stem + 3 stages x 5 blocks x 2; + classifier = 32 weighted layers
    assert [c.filters for c in convs[1::10]] == [16, 32, 64]
    assert [layer.name for layer in model.layers if isinstance(layer, ZeroPadShortcut)] == [
        "stage2_block1_shortcut_pad", "stage3_block1_shortcut_pad"]
    classifier = model.get_layer("classifier")
    assert isinstance(classifier, keras.layers.Dense) and classifier.units == 10
    assert model.get_layer("features").output.shape == (None, 64)


def test_projection_shortcut_is_option_b():
    model = resnet32(10, shortcut="projection")
    assert _trainable(model) == 464_154 + 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
    assert not any(isinstance(layer, ZeroPadShortcut) for layer in model.layers)
    with pytest.raises(ValueError, match="Expected `shortcut`.*Received: shortcut='B'"):
        resnet32(10, shortcut="B")


def test_zero_pad_shortcut_equals_the_reference_formula():
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 16)).astype("float32")
    y = np.asarray(ZeroPadShortcut(32)(x))
    expected = np.pad(x[:, ::2, ::2, :], [(0, 0), (0, 0), (0, 0), (8, 8)])  # F.pad(..., planes // 4 each side)
    np.testing.assert_array_equal(y, expected)
    assert ZeroPadShortcut(32).compute_output_shape((None, 7, 6, 16)) == (None, 4, 3, 32)
    helpers.assert_config_round_trip(ZeroPadShortcut(64, stride=1))
    with pytest.raises(ValueError, match="Expected an input with at most `filters`=8"):
        ZeroPadShortcut(8)(x)


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
    norms = [layer for layer in resnet32(10, input_shape=(16, 16, 3)).layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 1 + 15 * 2 and all(layer.momentum == 0.9 for layer in norms)  # PyTorch's 0.1
    model = resnet32(10, input_shape=(16, 16, 3), batch_norm_momentum=0.99, shortcut="projection")
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 1 + 15 * 2 + 2 and all(layer.momentum == 0.99 for layer in norms)
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        resnet32(10, batch_norm_momentum=1.0)


def test_augmentation_layers_come_first_and_act_only_in_training(tmp_path):
    from keras_longtail.layers import PaddedRandomCrop

    crop, flip = PaddedRandomCrop(4, seed=0, name="crop"), keras.layers.RandomFlip("horizontal", seed=0, name="flip")
    model = resnet32(10, input_shape=(16, 16, 3), augmentation=[crop, flip])
    plain = resnet32(10, input_shape=(16, 16, 3))
    assert [layer.name for layer in model.layers[1:4]] == ["crop", "flip", "stem_conv"]
    assert _trainable(model) == _trainable(plain)
    plain.set_weights(model.get_weights())  # the random layers have no weights
    x = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(model(x, training=False), plain(x, training=False), atol=1e-6)  # identity
    # In training the network sees augmented images: its output is that of the plain network on them.
    features = keras.Model(model.input, model.get_layer("flip").output)
    augmented = np.asarray(features(x, training=True))
    assert not np.allclose(augmented, x)
    helpers.assert_keras_save_load(model, x, tmp_path, atol=1e-5)
    with pytest.raises(TypeError, match="Expected `augmentation` to hold Keras layers"):
        resnet32(10, augmentation=["crop"])
