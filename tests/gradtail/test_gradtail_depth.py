import numpy as np
import pytest

from keras_longtail import models
from keras_longtail.gradtail import RandomPatches
from keras_longtail.gradtail import gradtail_depth
from tests import helpers


def _network():
    return models.depth_unet((32, 64, 3), width_multiplier=0.25)


def test_paper_configuration_on_the_decoder_biases():
    network = _network()
    model = gradtail_depth(network)
    assert [v.path for v in model.gradtail_variables] == ["decoder_up_1/bias", "decoder_up_2/bias"]
    assert model.gradtail_variables[0] is network.get_layer("decoder_up_1").bias  # shares the network's weights
    assert model.gradtail_resolved_path == "bias"
    assert model.pivot == -0.5 and model.activation.max_weight == 15.0 and model.decay == 0.99
    assert model.patches.get_config() == {"num_patches": 6, "min_size": 20, "max_size": 100,
                                          "include_uncovered": True, "seed": 0}
    assert gradtail_depth(_network(), seed=3).patches.seed == 3


def test_saves_and_reloads_with_its_configuration(tmp_path):
    # Fitting on masked scenes end to end: tests/test_cli.py (the depth task); the step itself: test_gradtail_bias_path.
    model = gradtail_depth(_network(), patches=RandomPatches(num_patches=2, min_size=8, max_size=16))
    model.gradtail_sigma.assign(0.25)
    images = np.random.default_rng(0).uniform(size=(2, 32, 64, 3)).astype(np.float32)
    reloaded = helpers.assert_keras_save_load(model, images, tmp_path)
    assert [v.path for v in reloaded.gradtail_variables] == ["decoder_up_1/bias", "decoder_up_2/bias"]
    assert reloaded.patches.get_config() == model.patches.get_config() and reloaded.pivot == -0.5
    assert reloaded.activation.max_weight == 15.0 and float(reloaded.gradtail_sigma.numpy()) == 0.25


def test_bad_arguments_name_themselves():
    network = _network()
    with pytest.raises(TypeError, match="bias_layers"):
        gradtail_depth(network, bias_layers="decoder_up_1")
    with pytest.raises(ValueError, match="bias_layers.*'decoder_up_9'"):
        gradtail_depth(network, bias_layers=["decoder_up_9"])
    with pytest.raises(ValueError, match="'stem_conv' \\(no bias\\)"):
        gradtail_depth(network, bias_layers=["stem_conv"])
    with pytest.raises(ValueError, match="max_weight"):
        gradtail_depth(network, max_weight=0.5)
    with pytest.raises(TypeError, match="patches"):
        gradtail_depth(network, patches="random")
