import keras
import numpy as np
import pytest

from keras_longtail.models import resnext50
from tests import helpers

# torchvision.models.resnext50_32x4d(): 25,028,904 parameters, of which 2048 * 1000 + 1000 are its fc.
TORCHVISION_BACKBONE = 25_028_904 - (2048 * 1000 + 1000)


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def test_architecture_matches_torchvision_resnext50_32x4d():
    model = resnext50(5, input_shape=(64, 64, 3))
    assert _count(model.trainable_weights) == TORCHVISION_BACKBONE + 2048 * 5 + 5
    classifier = model.get_layer("classifier")
    assert isinstance(classifier, keras.layers.Dense) and classifier.units == 5
    assert classifier.activation is keras.activations.linear
    assert model.get_layer("features").output.shape == (None, 2048)
    grouped = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1]
    assert len(grouped) == 16 and all(layer.groups == 32 for layer in grouped)
    # 32 groups of 4 / 8 / 16 / 32 channels in the four stages.
    assert [grouped[i].filters for i in (0, 3, 7, 13)] == [128, 256, 512, 1024]
    assert [grouped[i].strides for i in (0, 3, 7, 13)] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert grouped[0].kernel.shape == (3, 3, 4, 128)
    assert all(not layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    # 64 -> stem /4 -> stages /1 /2 /2 /2: a 2x2 map before pooling.
    assert model.get_layer("stage4_block3_out").output.shape == (None, 2, 2, 2048)
    x = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype("float32")
    assert model(x).shape == (2, 5)


def test_bad_input():
    with pytest.raises(ValueError, match="num_classes"):
        resnext50(1)
    with pytest.raises(ValueError, match="input_shape"):
        resnext50(3, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        resnext50(3, batch_norm_momentum=-0.1)


@pytest.mark.slow  # ~30 s: tracing the training step of a 23 M-parameter network on CPU
def test_one_training_step():
    model = resnext50(3, input_shape=(32, 32, 3))
    model.compile(optimizer=keras.optimizers.SGD(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(2).uniform(size=(4, 32, 32, 3)).astype("float32")
    before = model.get_layer("stage2_block1_conv2").kernel.numpy()
    loss = model.train_on_batch(x, np.array([0, 1, 2, 0]))
    assert np.isfinite(loss)
    assert not np.allclose(before, model.get_layer("stage2_block1_conv2").kernel.numpy())  # grouped conv learns


@pytest.mark.slow  # ~12 s: writes and reads 23 M weights
def test_keras_round_trip(tmp_path):
    model = resnext50(4, input_shape=(32, 32, 3), batch_norm_momentum=0.9)
    x = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype("float32")
    reloaded = helpers.assert_keras_save_load(model, x, tmp_path, atol=1e-4)
    assert reloaded.get_layer("stage3_block1_conv2").groups == 32
    assert reloaded.get_layer("stem_bn").momentum == 0.9


@pytest.mark.slow  # ~13 s: bfloat16 convolutions are emulated on CPU
def test_runs_in_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = resnext50(3, input_shape=(32, 32, 3))
        logits = model(np.random.default_rng(3).uniform(size=(2, 32, 32, 3)).astype("float32"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("stage2_block1_conv2").compute_dtype == "bfloat16"
    assert model.get_layer("stage2_block1_conv2").kernel.dtype == "float32"
    assert logits.shape == (2, 3) and np.all(np.isfinite(keras.ops.convert_to_numpy(logits).astype("float32")))
