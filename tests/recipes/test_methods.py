"""Every registered method trains one tiny step through `run_training` on digits-LT with its defaults."""

import numpy as np
import pytest

from keras_longtail import recipes

EXPECTED_RESULT_KEYS = {
    "ce": set(),
    "gala": {"gala_accumulation"},
    "gradtail": {"gradtail_max_weight", "gradtail_layers"},
    "gbg": {"num_groups", "gbg_mode", "groups", "gbg_normalization", "gbg_sampler", "gbg_group_loss",
            "gbg_weighting", "gbg_within_group_imbalance"},
    "async": {"phase_two_learning_rate", "async_phase_one_classes", "async_steps_per_epoch", "memory_size"},
    "wb": {"stage_one_accuracy", "stage_two_max_norm"},
}
SLOW = {"gbg"}  # its class grouping pass: ~7 s on the shared 2-core machine


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
                                  for name in recipes.METHODS])
def test_each_registered_method_trains_one_step_with_its_defaults(name):
    method = recipes.get_method(name)
    results = recipes.run_training("digits-lt", method=name, epochs=1, steps_per_epoch=1, verbose=0)
    assert results["method"] == name and results["steps_per_epoch"] == 1
    assert set(results["accuracy"]) == {"overall", "many", "medium", "few"}
    assert 0 <= results["accuracy"]["overall"] <= 100
    assert EXPECTED_RESULT_KEYS[name] <= set(results)
    if name == "gbg":  # the grouping's within-group imbalance, for the class counts it was trained on
        from keras_longtail.gbg import ClassGrouping

        grouping = ClassGrouping(results["groups"], results["num_groups"])
        assert results["gbg_within_group_imbalance"] == [
            round(r, 2) for r in grouping.within_group_imbalance(results["class_counts"])]
    phases = ["phase_one", "phase_two"] if name == "async" else ["fit"]
    assert sorted(results["epoch_logs"]) == phases  # one epoch per fit, with its loss
    assert all(len(logs) == 1 and np.isfinite(logs[0]["loss"]) for logs in results["epoch_logs"].values())
    for option, default in method.defaults.items():  # the recorded options are the registered defaults
        if option in results and default is not None:  # None: resolved in the recipe (e.g. phase II's rate)
            assert results[option] == default, option


def test_every_registered_method_is_covered_here():
    assert set(EXPECTED_RESULT_KEYS) == set(recipes.METHODS)


def test_dual_phase_runs_share_one_phase_one(tmp_path):
    """`phase_one_dir`: the first run trains and saves phase I, a run that differs only in phase II loads it."""
    directory = tmp_path / "phase_one"
    first = recipes.run_training("digits-lt", method="async", epochs=2, verbose=0, phase_one_dir=directory)
    assert first["phase_one_loaded"] is False and (directory / "phase_one.json").exists()
    phase_one_steps, one_pass = first["async_steps_per_epoch"]
    second = recipes.run_training("digits-lt", method="async", epochs=2, verbose=0, phase_one_dir=str(directory),
                                  phase_two_steps=3, async_options={"memory_size": 5})
    assert second["phase_one_loaded"] is True and second["async_steps_per_epoch"] == [phase_one_steps, 3]
    tail = [c for k, c in enumerate(first["class_counts"]) if k not in first["async_phase_one_classes"]]
    assert first["memory_size"] == int(np.floor(np.mean(tail) + 0.5)) != 10  # the default, "balanced"
    assert second["memory_size"] == 5
    fixed = recipes.run_training("digits-lt", method="async", epochs=2, verbose=0, phase_one_dir=directory,
                                 async_options={"memory_size": 10})
    assert fixed["memory_size"] == 10 and fixed["async_options"] == {"memory_size": 10}
    paper = recipes.run_training("digits-lt", method="async", epochs=2, verbose=0, phase_one_dir=directory,
                                 phase_two_steps="phase_one")  # as many phase-II steps as phase I's
    assert paper["phase_one_loaded"] is True and paper["async_steps_per_epoch"] == [phase_one_steps] * 2
    with pytest.raises(ValueError, match="phase I of this run.*'seed': \\(0, 1\\)"):  # another run's phase I
        recipes.run_training("digits-lt", method="async", epochs=2, verbose=0, phase_one_dir=directory, seed=1)


@pytest.mark.parametrize("options, match", [({"phase_two_steps": 0}, "phase_two_steps"),
                                            ({"phase_two_steps": "paper"}, "phase_two_steps"),
                                            ({"phase_one_dir": 3}, "phase_one_dir")])
def test_dual_phase_length_and_phase_one_dir_bad_input(options, match):
    with pytest.raises((TypeError, ValueError), match=match):
        recipes.run_training("digits-lt", method="async", epochs=1, verbose=0, **options)
    with pytest.raises(ValueError, match=match):  # options of the dual-phase method only
        recipes.run_training("digits-lt", method="ce", epochs=1, verbose=0, **options)


@pytest.mark.slow
def test_a_resumed_gbg_run_reuses_its_grouping_and_skips_the_grouping_pass(tmp_path, monkeypatch):
    from keras_longtail import gbg as lt_gbg

    options = dict(method="gbg", epochs=2, steps_per_epoch=2, verbose=0, state_dir=str(tmp_path))
    record = recipes.Progress.record

    def interrupted(self, phase, epoch, epochs, logs=None):
        record(self, phase, epoch, epochs, logs)
        raise KeyboardInterrupt  # killed just after the first epoch's checkpoint

    monkeypatch.setattr(recipes.Progress, "record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        recipes.run_training("digits-lt", **options)
    monkeypatch.setattr(recipes.Progress, "record", record)
    first_groups = recipes.Progress(str(tmp_path)).kept("gbg_grouping")["groups"]

    def no_second_pass(*args, **kwargs):
        raise AssertionError("the resumed run recomputed the grouping")

    monkeypatch.setattr(lt_gbg, "group_classes", no_second_pass)
    resumed = recipes.run_training("digits-lt", **options)
    assert resumed["resumed_from"] == {"fit": {"epoch": 1, "epochs": 2}}
    assert resumed["groups"] == first_groups and len(set(first_groups)) == resumed["num_groups"]
    logs = resumed["epoch_logs"]["fit"]  # both epochs, GBG's logs included
    assert len(logs) == 2 and all(1 / resumed["num_groups"] <= epoch["gbg_alpha_max"] <= 1 for epoch in logs)
    for epoch in logs:  # each group's mean weight: on the simplex, the largest below the mean largest weight
        means = [epoch[f"gbg_alpha_{g}"] for g in range(resumed["num_groups"])]
        assert sum(means) == pytest.approx(1.0, abs=1e-4) and max(means) <= epoch["gbg_alpha_max"] + 1e-6


def test_progress_keeps_values_across_calls_and_nothing_without_a_state_dir(tmp_path):
    recipes.Progress(str(tmp_path)).keep("grouping", {"groups": [0, 1, 1]})
    assert recipes.Progress(str(tmp_path)).kept("grouping") == {"groups": [0, 1, 1]}
    assert recipes.Progress(str(tmp_path)).kept("other") is None
    without = recipes.Progress(None)
    without.keep("grouping", [0])
    assert without.kept("grouping") is None


def test_progress_keeps_the_scalar_epoch_logs_as_plain_json(tmp_path):
    progress = recipes.Progress(str(tmp_path))
    progress.record("fit", 1, 2, {"loss": float("nan"), "acc": np.float32(0.123456789), "per_class": np.ones(3),
                                  "name": "text", "steps": 7})
    progress.record("fit", 2, 2, {"loss": 1.0})
    expected = {"fit": [{"acc": 0.123457, "loss": None, "steps": 7.0}, {"loss": 1.0}]}
    assert progress.epoch_logs == expected
    assert recipes.Progress(str(tmp_path)).epoch_logs == expected  # strict JSON on disk (no NaN)
    assert "NaN" not in (tmp_path / "progress.json").read_text()
    resumed = recipes.Progress(str(tmp_path))
    resumed.record("fit", 2, 2, {"loss": 0.5})  # a resumed epoch 2 replaces the old one
    assert resumed.epoch_logs["fit"][1] == {"loss": 0.5} and len(resumed.epoch_logs["fit"]) == 2
    # a phase resumed from a state that kept no logs: the epochs before stay in place, empty
    resumed.record("phase_two", 3, 5, {"loss": 2.0})
    assert resumed.epoch_logs["phase_two"] == [{}, {}, {"loss": 2.0}]


def test_a_gbg_state_dir_with_another_grouping_is_refused_before_training(tmp_path):
    recipes.Progress(str(tmp_path)).keep("gbg_grouping", {"groups": [0, 1, 2, 3] * 2 + [0, 1], "num_groups": 4})
    with pytest.raises(ValueError, match=r"Expected num_groups=4 over 10 classes.*Received: num_groups=3 over 10"):
        recipes.run_training("digits-lt", method="gbg", num_groups=3, epochs=1, verbose=0, state_dir=str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ce", "gbg", "async"])
def test_augmentation_in_the_model_replaces_the_pipeline_s(name, monkeypatch, tmp_path):
    # The three input paths (Job.fit, which gala, gradtail and wb also use; GBG's sampler; the two dual-phase
    # fits) train with the crop and flip inside the network, and the tf.data pipeline then never augments: one
    # augmentation, not two. The image recipe (resnet32, augmented) runs on
    # digits-LT's 8x8 images standing in for Fashion-MNIST, so that the test stays small.
    import keras

    from keras_longtail import data
    from keras_longtail.recipes import pipeline

    def refuse(image, label):
        raise AssertionError("the tf.data pipeline augmented although the network does")

    monkeypatch.setattr(pipeline, "crop_and_flip", refuse)
    monkeypatch.setattr(data, "load_fashion_mnist_lt", lambda imbalance_factor, data_dir=None: data.load_digits_lt())
    path = str(tmp_path / "model.keras")
    results = recipes.run_training("fashion-mnist-lt", method=name, epochs=1, steps_per_epoch=2, verbose=0,
                                   augment_in_model=True, save_model=path)
    assert results["augment_in_model"] is True and 0 <= results["accuracy"]["overall"] <= 100
    names = [layer.name for layer in keras.saving.load_model(path).layers]
    assert "augment_crop" in names and "augment_flip" in names


def test_augmentation_in_the_model_bad_input():
    with pytest.raises(ValueError, match="Expected `augment_in_model=True` only with the resnet32 model"):
        recipes.run_training("digits-lt", epochs=1, verbose=0, augment_in_model=True)
    with pytest.raises(TypeError, match="Expected `augment_in_model` to be a bool"):
        recipes.run_training("digits-lt", epochs=1, verbose=0, augment_in_model="yes")


@pytest.mark.parametrize("name", ["ce", pytest.param("async", marks=pytest.mark.slow),
                                  pytest.param("gbg", marks=pytest.mark.slow)])
def test_momentum_form_pytorch_trains_every_fit_with_pytorch_sgd(name, monkeypatch):
    # Job.optimizer makes the optimizer of every fit (ce's one, both dual-phase phases, the one GBGModel applies its
    # combined gradient with); digits-LT's 8x8 images stand
    # in for Fashion-MNIST so that the SGD recipe (resnet32) stays small.
    import importlib

    from keras_longtail import data

    module = importlib.import_module("keras_longtail.recipes.run_training")
    made, original = [], module.Job.optimizer

    def spy(self, *args, **kwargs):
        optimizer = original(self, *args, **kwargs)
        made.append(type(optimizer).__name__)
        return optimizer

    monkeypatch.setattr(module.Job, "optimizer", spy)
    monkeypatch.setattr(data, "load_fashion_mnist_lt", lambda imbalance_factor, data_dir=None: data.load_digits_lt())
    results = recipes.run_training("fashion-mnist-lt", method=name, epochs=1, steps_per_epoch=2, verbose=0,
                                   momentum_form="pytorch")
    assert results["momentum_form"] == "pytorch"
    assert made == ["PyTorchSGD"] * (2 if name == "async" else 1)


def test_momentum_form_bad_input():
    with pytest.raises(ValueError, match=r"Expected `momentum_form` to be one of \['keras', 'pytorch'\]"):
        recipes.run_training("digits-lt", epochs=1, verbose=0, momentum_form="torch")
    with pytest.raises(ValueError, match="Expected `momentum_form='keras'` with digits-lt"):
        recipes.run_training("digits-lt", epochs=1, verbose=0, momentum_form="pytorch")
