import keras
import numpy as np

from keras_longtail.weight_balancing import PerClassMaxNormProjection
from keras_longtail.weight_balancing import WeightNormMonitor


def test_projection_callback_caps_every_class_each_epoch():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="classifier")])
    model.compile(keras.optimizers.SGD(1.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    monitor = WeightNormMonitor("classifier")
    model.fit(x, np.arange(30) % 3, epochs=3, verbose=0,
              callbacks=[PerClassMaxNormProjection("classifier", max_norm=0.2), monitor])
    assert np.linalg.norm(model.get_layer("classifier").kernel.numpy(), axis=0).max() <= 0.2 + 1e-6
    assert monitor.history().shape == (4, 3)  # before training and after each of 3 epochs
    assert monitor.history()[-1].max() <= 0.2 + 1e-6  # recorded after the projection
