import keras
import numpy as np
import pytest

from keras_longtail import data
from keras_longtail import models
from keras_longtail.weight_balancing import retrain_classifier
from tests import helpers


@pytest.mark.slow
def test_two_stages_on_digits_lt_change_only_the_classifier_and_help_the_tail():
    loaded = data.load_digits_lt(imbalance_factor=20)
    x, y = map(np.stack, zip(*loaded.train.as_numpy_iterator()))
    x_test, y_test = map(np.stack, zip(*loaded.test.as_numpy_iterator()))
    keras.utils.set_random_seed(0)
    model = models.mlp(10, (8, 8, 1), hidden_units=(64,))
    model.compile(keras.optimizers.Adam(0.01, weight_decay=1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)

    def class_averaged():
        predicted = model.predict(x_test, verbose=0).argmax(-1)
        return np.mean([np.mean(predicted[y_test == k] == k) for k in range(10)])

    before = class_averaged()
    frozen = [w.copy() for layer in model.layers if layer.name != "classifier" for w in layer.get_weights()]
    norms_before = np.linalg.norm(model.get_layer("classifier").kernel.numpy(), axis=0)
    retrain_classifier(model, loaded.train, class_counts=loaded.class_counts, epochs=10)
    after_frozen = [w for layer in model.layers if layer.name != "classifier" for w in layer.get_weights()]
    for a, b in zip(frozen, after_frozen):
        np.testing.assert_array_equal(a, b)
    norms_after = np.linalg.norm(model.get_layer("classifier").kernel.numpy(), axis=0)
    radius = norms_before.min() + 0.1 * (norms_before.max() - norms_before.min())
    assert norms_after.max() <= radius + 1e-5  # MaxNorm from the stage-1 norms, projected per epoch
    assert class_averaged() >= before - 0.02  # never a collapse; the benchmark measures the gain


def test_retrain_classifier_bad_input():
    model = models.mlp(3, (4,), hidden_units=(8,))
    x, y = np.ones((6, 4), "float32"), np.array([0, 1, 2, 0, 1, 2])
    with pytest.raises(ValueError, match="classifier"):
        retrain_classifier(model, x, y, classifier="nope")
    with pytest.raises(ValueError, match="beta"):
        retrain_classifier(model, x, y, beta=1.0)
    with pytest.raises(ValueError, match="projection"):
        retrain_classifier(model, x, y, projection="always")


@pytest.mark.slow
def test_an_interrupted_stage_two_leaves_the_model_as_it_was_and_reruns_identically(tmp_path):
    # Stage 2 writes into the model only when it completes: a restart re-runs it from the stage-1 model.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)).astype("float32"), np.repeat([0, 1, 2], [40, 15, 5])
    keras.utils.set_random_seed(0)
    model = models.mlp(num_classes=3, input_shape=(4,), hidden_units=(8,))
    model.save(tmp_path / "stage_one.keras")

    def stage_two(callbacks, loaded):
        keras.utils.set_random_seed(1)
        retrain_classifier(loaded, x, y, epochs=3, batch_size=8, callbacks=callbacks)
        return loaded

    def load():
        return keras.saving.load_model(tmp_path / "stage_one.keras")  # what a restarted process loads

    killed = load()
    with pytest.raises(RuntimeError, match="interrupted"):
        stage_two([helpers.Interrupt(epoch=1, batch=2)], killed)
    for want, have in zip(model.get_weights(), killed.get_weights()):
        np.testing.assert_array_equal(have, want)
    uninterrupted, rerun = stage_two([], load()), stage_two([], load())
    assert not np.allclose(uninterrupted.get_layer("classifier").kernel.numpy(),
                           model.get_layer("classifier").kernel.numpy(), rtol=1e-3)  # stage 2 did train
    for want, have in zip(uninterrupted.get_weights(), rerun.get_weights()):
        np.testing.assert_array_equal(have, want)
