"""keras_longtail.gradtail is GradTail's home; keras_longtail.training keeps exporting the same objects."""

import keras_longtail.gradtail
import keras_longtail.training


def test_training_re_exports_every_gradtail_name():
    gradtail, training = keras_longtail.gradtail, keras_longtail.training
    assert gradtail.__all__ and set(gradtail.__all__) <= set(training.__all__)
    for name in gradtail.__all__:
        assert getattr(training, name) is getattr(gradtail, name), name
        assert getattr(gradtail, name).__module__.startswith("keras_longtail.gradtail."), name


def test_gradtail_models_keep_their_registered_names():
    """Saved `.keras` files name the class `keras_longtail>GradTailModel`: the move must not change it."""
    import keras

    for name in ("GradTailModel", "GradTailSigmoid", "RandomPatches"):
        obj = getattr(keras_longtail.gradtail, name)
        assert keras.saving.get_registered_name(obj) == f"keras_longtail>{name}"
