import json
import subprocess
import sys

import pytest

from keras_longtail import cli
from tests.data.test_loaders import _write_cifar10_pickles


def test_default_job_prints_shot_table(tmp_path, capsys):
    output = tmp_path / "results.json"
    assert cli.main(["train", "--epochs", "3", "--verbose", "0", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    for row in ("overall", "many", "medium", "few"):
        assert row in printed
    results = json.loads(output.read_text())
    assert results["dataset"] == "digits-lt" and results["method"] == "ce"
    assert results["class_counts"] == [144, 103, 74, 53, 38, 27, 19, 14, 10, 7]
    assert results["shot_classes"] == {"many": 2, "medium": 4, "few": 4}
    assert set(results["accuracy"]) == {"overall", "many", "medium", "few"}
    assert 0 <= results["accuracy"]["overall"] <= 100
    assert len(results["per_class_accuracy"]) == 10


@pytest.mark.slow
def test_cifar_with_tiny_files(tmp_path, capsys):
    _write_cifar10_pickles(str(tmp_path), per_class=12)
    code = cli.main(["train", "--dataset", "cifar10-lt", "--data-dir", str(tmp_path), "--imbalance-factor", "4",
                     "--epochs", "1", "--batch-size", "16", "--verbose", "0"])
    assert code == 0
    assert "resnet32" in capsys.readouterr().out


def test_errors_are_reported_not_raised(tmp_path, capsys):
    code = cli.main(["train", "--dataset", "cifar10-lt", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "data_dir" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):  # an argparse range error, before any import of TensorFlow
        cli.main(["train", "--epochs", "0"])
    with pytest.raises(SystemExit):
        cli.main(["train", "--method", "nope"])


@pytest.mark.slow
def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "keras_longtail", "train", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--imbalance-factor" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("momentum_form", [None, "pytorch"])
def test_real_cifar10_lt_one_short_epoch(cifar10_jpeg_dir, capsys, tmp_path, momentum_form):
    extra = [] if momentum_form is None else ["--momentum-form", momentum_form]
    code = cli.main(["train", "--dataset", "cifar10-lt", "--data-dir", cifar10_jpeg_dir, "--epochs", "1",
                     "--steps-per-epoch", "2", "--verbose", "0", "--output", str(tmp_path / "r.json"), *extra])
    assert code == 0
    out = capsys.readouterr().out
    assert "cifar10-lt" in out and "few" in out
    assert json.loads((tmp_path / "r.json").read_text())["momentum_form"] == (momentum_form or "keras")


@pytest.mark.slow
def test_real_fashion_mnist_lt_one_short_epoch(fashion_mnist_dir, capsys):
    code = cli.main(["train", "--dataset", "fashion-mnist-lt", "--epochs", "1", "--steps-per-epoch", "2",
                     "--verbose", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert "absent" in out  # Fashion-MNIST-LT IF 100 has no Few class


@pytest.mark.slow
def test_gala_with_prediction_rebalancing(tmp_path, capsys):
    output = tmp_path / "gala.json"
    code = cli.main(["train", "--method", "gala", "--gala-accumulation", "official", "--rebalance-tau", "1",
                     "--epochs", "2", "--verbose", "0", "--output", str(output)])
    assert code == 0
    assert "PN tau=1" in capsys.readouterr().out
    results = json.loads(output.read_text())
    assert results["method"] == "gala" and results["gala_accumulation"] == "official"
    assert set(results["rebalanced_accuracy"]) == {"overall", "many", "medium", "few"}
    assert len(results["rebalanced_per_class_accuracy"]) == 10


@pytest.mark.slow
def test_rebalance_tau_zero_changes_nothing():
    results = cli.run_training(epochs=2, rebalance_tau=0.0, verbose=0)
    assert results["rebalanced_accuracy"] == results["accuracy"]
    assert results["rebalanced_per_class_accuracy"] == results["per_class_accuracy"]


def test_bad_gala_and_rebalance_arguments():
    with pytest.raises(ValueError, match="gala_accumulation"):
        cli.run_training(method="gala", gala_accumulation="nope", epochs=1, verbose=0)
    with pytest.raises(ValueError, match="rebalance_tau"):
        cli.run_training(rebalance_tau=-1.0, epochs=1, verbose=0)


@pytest.mark.slow
def test_gradtail_method(tmp_path):
    results = cli.run_training(method="gradtail", gradtail_max_weight=5.0, epochs=2, verbose=0)
    assert results["method"] == "gradtail" and results["gradtail_max_weight"] == 5.0
    assert 0 <= results["accuracy"]["overall"] <= 100
    with pytest.raises(ValueError, match="gradtail_layers"):
        cli.run_training(method="gradtail", gradtail_layers="all", epochs=1, verbose=0)


@pytest.mark.parametrize("method, extra", [("gbg", {"num_groups": 2}), ("async", {})])
@pytest.mark.slow
def test_gbg_and_dual_phase_methods(method, extra, monkeypatch):
    from keras_longtail import data as lt_data

    completion_calls = []

    def recording_completion(*args, **kwargs):
        completion_calls.append(kwargs)
        return group_aware_completion(*args, **kwargs)

    group_aware_completion = lt_data.group_aware_completion
    monkeypatch.setattr(lt_data, "group_aware_completion", recording_completion)
    results = cli.run_training(method=method, epochs=2, verbose=0, **extra)
    assert results["method"] == method and 0 <= results["accuracy"]["overall"] <= 100
    if method == "gbg":
        assert results["num_groups"] == 2 and len(results["groups"]) == 10
        # the GBG code's defaults (backbone alpha, loss+) and the paper's GAC sampler
        assert (results["gbg_mode"], results["gbg_normalization"], results["gbg_sampler"]) == (
            "backbone", "loss+", "group_aware_completion")
        assert len(completion_calls) == 1 and completion_calls[0]["seed"] == 0
    else:
        # digits-LT IF 20: 2 Many + 4 Medium classes train in phase I
        assert results["async_phase_one_classes"] == [0, 1, 2, 3, 4, 5]


@pytest.mark.slow
def test_gbg_solve_every_flag(tmp_path, capsys):
    output = tmp_path / "gbg.json"
    code = cli.main(["train", "--method", "gbg", "--num-groups", "2", "--gbg-solve-every", "3", "--epochs", "1",
                     "--verbose", "0", "--output", str(output)])
    assert code == 0
    results = json.loads(output.read_text())
    assert results["gbg_options"] == {"normalization": "loss+", "solve_every": 3} and results["gbg_mode"] == "backbone"
    with pytest.raises(SystemExit, match="2"):
        cli.main(["train", "--method", "gbg", "--gbg-solve-every", "0", "--epochs", "1", "--verbose", "0"])
    assert "--gbg-solve-every" in capsys.readouterr().err


def test_gbg_pipeline_options(monkeypatch):
    from keras_longtail import data as lt_data

    def no_completion(*args, **kwargs):
        raise AssertionError("sampler='random' must not use group_aware_completion")

    monkeypatch.setattr(lt_data, "group_aware_completion", no_completion)
    options = {"sampler": "random", "group_classes": {"gradients": "classifier", "training": True},
               "normalization": "none"}
    results = cli.run_training(method="gbg", num_groups=2, gbg_mode="exact", gbg_options=options, epochs=1,
                               verbose=0)
    assert (results["gbg_sampler"], results["gbg_normalization"]) == ("random", "none")
    assert results["gbg_options"] == options
    with pytest.raises(ValueError, match="sampler"):
        cli.run_training(method="gbg", gbg_options={"sampler": "balanced"}, epochs=1, verbose=0)


def test_batch_norm_momentum_needs_a_resnet():
    with pytest.raises(ValueError, match="batch_norm_momentum"):
        cli.run_training(epochs=1, verbose=0, batch_norm_momentum=0.9)  # digits-LT trains an MLP


@pytest.mark.slow
def test_weight_balancing_from_a_saved_stage_one(tmp_path):
    stage_one = tmp_path / "stage1.keras"
    first = cli.run_training(epochs=2, verbose=0, save_model=str(stage_one))
    results = cli.run_training(method="wb", stage_one_model=str(stage_one), verbose=0)
    assert results["stage_one_accuracy"] == first["accuracy"]  # the reloaded stage 1, evaluated again
    assert results["stage_two_max_norm"] > 0 and 0 <= results["accuracy"]["overall"] <= 100
    with pytest.raises(ValueError, match="stage_one_model"):
        cli.run_training(method="ce", stage_one_model=str(stage_one), verbose=0)


@pytest.mark.slow
def test_dual_phase_options_pass_through():
    results = cli.run_training(method="async", epochs=1, verbose=0, async_options={"retentive_temperature": 0.1})
    assert results["async_options"] == {"retentive_temperature": 0.1}
    with pytest.raises(ValueError, match="retentive_weight"):
        cli.run_training(method="async", epochs=1, verbose=0, async_options={"retentive_weight": -1.0})


@pytest.mark.slow
def test_dual_phase_learning_rate_of_phase_two(tmp_path):
    output = tmp_path / "async.json"
    assert cli.main(["train", "--method", "async", "--phase-two-lr", "0.005", "--epochs", "1", "--verbose", "0",
                     "--output", str(output)]) == 0
    assert json.loads(output.read_text())["phase_two_learning_rate"] == 0.005
    assert cli.run_training(method="async", epochs=1, verbose=0)["phase_two_learning_rate"] == 0.05  # digits' lr
    with pytest.raises(ValueError, match="phase_two_learning_rate.*method='ce'"):
        cli.run_training(method="ce", epochs=1, verbose=0, phase_two_learning_rate=0.01)
    with pytest.raises(ValueError, match="phase_two_learning_rate=0"):
        cli.run_training(method="async", epochs=1, verbose=0, phase_two_learning_rate=0)


@pytest.mark.slow
def test_depth_task_tiny_synthetic_gradtail_run(tmp_path, capsys):
    output = tmp_path / "depth.json"
    code = cli.main(["train", "--task", "depth", "--dataset", "synthetic-depth", "--method", "gradtail",
                     "--image-size", "32", "64", "--width-multiplier", "0.25", "--train-scenes", "4",
                     "--test-scenes", "3", "--epochs", "1", "--batch-size", "2", "--verbose", "0",
                     "--output", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    for column in ("<20 m", "20-40 m", "40-60 m", ">60 m", "total", "gradtail"):
        assert column in printed
    results = json.loads(output.read_text())
    assert list(results["mre"]) == ["mre_lt_20", "mre_20_40", "mre_40_60", "mre_gt_60", "mre_total"]
    assert all(value >= 0 for value in results["mre"].values()) and results["test_masked_l1"] > 0
    assert results["gradtail_variables"] == ["decoder_up_1/bias", "decoder_up_2/bias"]
    assert results["gradtail_path"] == "bias" and results["gradtail_max_weight"] == 15.0
    assert results["gradtail_pivot"] == -0.5 and results["gradtail_patches"]["num_patches"] == 6
    assert abs(sum(results["test_pixel_share_percent"].values()) - 100) < 0.1


def test_depth_task_missing_data_says_what_is_missing(tmp_path, capsys):
    assert cli.main(["train", "--task", "depth"]) == 2  # waymo is the default depth data set
    error = capsys.readouterr().err
    assert "--data-dir" in error and "keras-longtail[waymo]" in error and "synthetic-depth" in error
    assert cli.main(["train", "--task", "depth", "--data-dir", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "training") in error and "camera_image" in error


def test_depth_and_classification_options_do_not_mix(capsys):
    assert cli.main(["train", "--dataset", "synthetic-depth"]) == 2
    assert "--task depth" in capsys.readouterr().err
    assert cli.main(["train", "--image-size", "64", "160"]) == 2
    assert "--image-size is a --task depth option" in capsys.readouterr().err
    assert cli.main(["train", "--task", "depth", "--dataset", "synthetic-depth", "--method", "gala"]) == 2
    assert "method" in capsys.readouterr().err
    assert cli.main(["train", "--task", "depth", "--dataset", "cifar10-lt"]) == 2
    assert "dataset" in capsys.readouterr().err
    assert cli.main(["train", "--task", "depth", "--dataset", "synthetic-depth", "--momentum-form", "keras"]) == 2
    assert "--momentum-form is for the SGD recipes of classification" in capsys.readouterr().err


def test_momentum_form_pytorch_is_refused_for_digits_lt_which_trains_with_adam(capsys):
    assert cli.main(["train", "--momentum-form", "pytorch", "--epochs", "1", "--verbose", "0"]) == 2
    assert "Expected `momentum_form='keras'` with digits-lt" in capsys.readouterr().err


def test_ldam_schedule_warm_up_is_never_zero_and_the_schedule_serializes():
    import keras

    from keras_longtail.optimizers import LinearWarmup

    schedule = cli._ldam_schedule(0.1, epochs=12, steps_per_epoch=97)  # 2.5 % of 1164 steps: 29 steps
    assert isinstance(schedule, LinearWarmup) and schedule.warmup_steps == 29
    assert cli._ldam_schedule(0.1, epochs=1, steps_per_epoch=3).warmup_steps == 1
    assert abs(float(schedule(0)) - 0.1 / 29) < 1e-7 and abs(float(schedule(500)) - 0.1) < 1e-7
    assert abs(float(schedule(int(0.85 * 1164))) - 1e-3) < 1e-8
    revived = keras.optimizers.deserialize(keras.optimizers.serialize(keras.optimizers.SGD(schedule)))
    assert keras.optimizers.serialize(revived)["config"]["learning_rate"]["class_name"] == "LinearWarmup"
    assert abs(float(revived.learning_rate) - float(schedule(0))) < 1e-9


# --- issue 21: command-line hardening -------------------------------------------------------------------------

def _never_train(monkeypatch):
    """Makes any training attempt fail the test: the checks must come before any work."""
    def refuse(**kwargs):
        raise AssertionError("training started before the arguments were checked")

    monkeypatch.setattr(cli, "run_training", refuse)
    monkeypatch.setattr(cli, "run_depth_training", refuse)


@pytest.mark.parametrize("where", ["missing_dir", "directory"])
def test_bad_output_path_fails_before_training(tmp_path, monkeypatch, capsys, where):
    _never_train(monkeypatch)
    output = tmp_path / "no" / "such" / "dir" / "r.json" if where == "missing_dir" else tmp_path
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--epochs", "1", "--output", str(output)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--output" in error and ("does not exist" if where == "missing_dir" else "directory") in error


def test_unwritable_output_fails_before_training(tmp_path, monkeypatch, capsys):
    import os

    if hasattr(os, "geteuid") and os.geteuid() == 0:
        monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere: pretend it can't
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        tmp_path = tmp_path / "ro"
    _never_train(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--output", str(tmp_path / "r.json")])
    assert exit_info.value.code == 2 and "not writable" in capsys.readouterr().err


def test_existing_output_needs_overwrite_and_is_replaced_atomically(tmp_path, monkeypatch, capsys):
    output = tmp_path / "r.json"
    output.write_text('{"earlier": "run"}')
    _never_train(monkeypatch)
    with pytest.raises(SystemExit):
        cli.main(["train", "--output", str(output)])
    assert "--overwrite" in capsys.readouterr().err and output.read_text() == '{"earlier": "run"}'

    fake = {"dataset": "digits-lt", "imbalance_factor": 20, "method": "ce", "model": "mlp", "epochs": 1,
            "train_seconds": 0.1, "shot_classes": {"many": 1, "medium": 0, "few": 1}, "class_counts": [9, 1],
            "accuracy": {"overall": 50.0, "many": 100.0, "few": 0.0}}
    monkeypatch.setattr(cli, "run_training", lambda **kwargs: fake)
    assert cli.main(["train", "--output", str(output), "--overwrite"]) == 0
    assert json.loads(output.read_text()) == fake
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left behind


def test_a_failed_final_write_keeps_the_results(tmp_path, monkeypatch, capsys):
    output = tmp_path / "r.json"
    fake = {"dataset": "digits-lt", "imbalance_factor": 20, "method": "ce", "model": "mlp", "epochs": 1,
            "train_seconds": 0.1, "shot_classes": {"many": 1, "medium": 0, "few": 1}, "class_counts": [9, 1],
            "accuracy": {"overall": 50.0, "many": 100.0, "few": 0.0}}

    def train_then_lose_the_directory(**kwargs):
        tmp_path.chmod(0o700)
        output.parent.rename(tmp_path.parent / (tmp_path.name + "-moved"))  # the directory vanishes mid-run
        return fake

    monkeypatch.setattr(cli, "run_training", train_then_lose_the_directory)
    assert cli.main(["train", "--output", str(output)]) == 1
    error = capsys.readouterr().err
    kept = error.rsplit("the results are in ", 1)[1].strip()
    assert json.loads(open(kept).read()) == fake


@pytest.mark.parametrize("flags, message", [
    (["--learning-rate", "-1"], "--learning-rate"),
    (["--learning-rate", "0"], "--learning-rate"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--weight-decay", "-0.1"], "--weight-decay"),
    (["--imbalance-factor", "0.5"], "--imbalance-factor"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-4"], "--batch-size"),
    (["--steps-per-epoch", "0"], "--steps-per-epoch"),
    (["--seed", "-1"], "--seed"),
    (["--gbg-num-groups", "0"], "--gbg-num-groups"),
    (["--gbg-solve-every", "0"], "--gbg-solve-every"),
    (["--async-threshold", "0"], "--async-threshold"),
    (["--phase-two-lr", "-0.01"], "--phase-two-lr"),
    (["--memory-size", "0"], "--memory-size"),
    (["--memory-size", "half"], "--memory-size"),
    (["--gradtail-max-weight", "0"], "--gradtail-max-weight"),
    (["--gradtail-pivot", "inf"], "--gradtail-pivot"),
    (["--rebalance-tau", "-1"], "--rebalance-tau"),
    (["--width-multiplier", "0"], "--width-multiplier"),
    (["--train-scenes", "0"], "--train-scenes"),
    (["--test-scenes", "0"], "--test-scenes"),
    (["--image-size", "16", "64"], "--image-size"),
])
def test_numeric_flags_are_range_checked_before_training(flags, message, monkeypatch, capsys):
    _never_train(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *flags])
    assert exit_info.value.code == 2
    assert f"argument {message}" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, name", [
    ({"learning_rate": -1.0}, "learning_rate"), ({"learning_rate": 0.0}, "learning_rate"),
    ({"weight_decay": -1e-3}, "weight_decay"), ({"imbalance_factor": 0.5}, "imbalance_factor"),
    ({"seed": -1}, "seed"), ({"method": "gbg", "num_groups": 0}, "num_groups"),
    ({"method": "gradtail", "gradtail_max_weight": 0.0}, "gradtail_max_weight"),
    ({"method": "async", "async_threshold": 0}, "async_threshold"),
])
def test_run_training_rejects_out_of_range_numbers(kwargs, name):
    with pytest.raises(ValueError, match=f"Expected `{name}`"):
        cli.run_training(epochs=1, verbose=0, **kwargs)


def test_help_and_version_import_neither_keras_nor_tensorflow():
    import re

    import keras_longtail

    for arguments in (["--help"], ["train", "--help"], ["--version"]):
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "keras_longtail", *arguments],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        imported = re.findall(r"^import time:.*\|\s+(\S+)$", done.stderr, flags=re.M)
        assert "argparse" in imported  # the import log is there ...
        assert not [m for m in imported if m.split(".")[0] in ("keras", "tensorflow")]  # ... without these
    assert done.stdout.strip() == f"keras-longtail {keras_longtail.__version__}"


def test_plain_import_still_registers_every_object():
    done = subprocess.run([sys.executable, "-c", "import sys, keras_longtail, keras; "
                           "print(keras.saving.get_registered_object('keras_longtail>GALALoss') is not None)"],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().endswith("True"), done.stderr


def test_help_groups_flags_by_method_and_num_groups_is_a_deprecated_alias(capsys):
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for title in ("GBG (--method gbg)", "dual-phase (--method async)", "GradTail", "weight balancing",
                  "depth (--task depth"):
        assert title in help_text
    gbg_section = help_text.split("GBG (--method gbg)")[1].split("dual-phase")[0]
    assert "--gbg-num-groups G" in gbg_section and "--num-groups G" in gbg_section
    assert "--learning-rate LR" in help_text and "--data-dir DIR" in help_text
    parser = cli.build_parser()
    assert parser.parse_args(["train", "--num-groups", "3"]).num_groups == 3
    assert "--num-groups is deprecated, use --gbg-num-groups" in capsys.readouterr().err
    assert parser.parse_args(["train", "--gbg-num-groups", "5"]).num_groups == 5
    assert capsys.readouterr().err == ""


@pytest.mark.slow  # three short CIFAR-sized trainings
@pytest.mark.parametrize("method, extra, expected", [
    ("gbg", {"num_groups": 2}, ["GBG: grouping 10 classes into 2 groups", "2/2 - ", "training (gbg): 1 epochs x 4"]),
    ("async", {}, ["1 epochs of phase I, 2 steps each (classes [0, 1, 2, 3, 4, 5], 439 images), then 1 of phase II, "
                   "2 steps each",
                   "dual-phase phase I: 1 epochs x 2 steps", "exemplar memory", "dual-phase phase II"]),
    ("wb", {}, ["weight balancing stage 1: CE + WD", "weight balancing: stage-1 test accuracy",
                "weight balancing stage 2: features of the 489 training images", "Epoch 10/10"]),
])
def test_long_phases_are_announced_with_progress(method, extra, expected, capsys):
    cli.run_training(method=method, epochs=1, steps_per_epoch=4, verbose=2, **extra)
    printed = capsys.readouterr().out
    assert "keras-longtail: 489 training images in 10 classes (2 Many, 4 Medium, 4 Few), 300 test images" in printed
    for line in expected + ["keras-longtail: test accuracy on 300 test images", "1/1 - "]:
        assert line in printed
    cli.run_training(method=method, epochs=1, steps_per_epoch=4, verbose=0, **extra)
    assert capsys.readouterr().out == ""  # verbose 0 stays silent


def test_result_table_says_it_is_test_accuracy():
    table = cli.format_shot_table({
        "dataset": "digits-lt", "imbalance_factor": 20, "method": "ce", "model": "mlp", "epochs": 1,
        "train_seconds": 0.1, "shot_classes": {"many": 1, "medium": 0, "few": 1}, "class_counts": [9, 1],
        "accuracy": {"overall": 50.0, "many": 100.0, "few": 0.0}})
    assert "test accuracy %" in table and "accuracy on the balanced test split" in table


_RELOAD_AND_EVALUATE = """
import json, sys
import keras
import keras_longtail  # registers every keras_longtail object, as a user's script would
from keras_longtail import cli
from keras_longtail.data import load_cifar_lt

data_dir, paths = sys.argv[1], sys.argv[2:]
loaded = load_cifar_lt("cifar10", 4, data_dir=data_dir)
report = {}
for path in paths:
    model = keras.saving.load_model(path)  # compile=True: the optimizer and its schedule come back too
    optimizer = getattr(model, "optimizer", None)  # None when the saved model was never compiled
    report[path] = {
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
        "schedule": keras.optimizers.serialize(optimizer)["config"]["learning_rate"]["class_name"]
        if optimizer is not None else None,
        "iterations": int(optimizer.iterations) if optimizer is not None else None,
        "accuracy": cli._evaluate(model, loaded)[0][0],
    }
print("REPORT" + json.dumps(report))
"""


@pytest.mark.slow
def test_every_method_saves_and_reloads_with_its_warm_up_schedule(tmp_path):
    """Issue 21 item 14: each method's model, compiled with the LDAM schedule (`LinearWarmup`), survives a
    `.keras` round trip with its optimizer in a fresh process, and gives the same test accuracy."""
    _write_cifar10_pickles(str(tmp_path), per_class=12)
    common = dict(dataset="cifar10-lt", data_dir=str(tmp_path), imbalance_factor=4, model="mlp", batch_size=8,
                  verbose=0)
    expected = {}
    for method, extra in (("ce", {}), ("gala", {}), ("gradtail", {}), ("gbg", {"num_groups": 2}),
                          ("async", {"async_threshold": 2})):  # the tiny set has only Few classes; memory 10
        # 8 epochs: the warm-up is 2.5 % of the steps, here >= 1 step in every phase (async's included).
        path = str(tmp_path / f"{method}.keras")
        expected[path] = cli.run_training(method=method, epochs=8, save_model=path, **common, **extra)
    # wb reloads a stage 1 that was compiled with the LDAM schedule, then saves stage 2.
    stage_two = str(tmp_path / "wb.keras")
    expected[stage_two] = cli.run_training(method="wb", stage_one_model=str(tmp_path / "ce.keras"),
                                           save_model=stage_two, **common)
    assert expected[stage_two]["stage_one_accuracy"] == expected[str(tmp_path / "ce.keras")]["accuracy"]

    done = subprocess.run([sys.executable, "-c", _RELOAD_AND_EVALUATE, str(tmp_path), *expected],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.split("REPORT", 1)[1])
    for path, results in expected.items():
        assert report[path]["accuracy"] == results["accuracy"], path
        if path.endswith(("async.keras", "wb.keras")):
            # async saves `DualPhaseTraining.model` and wb the stage-1 network reloaded with compile=False:
            # neither is compiled itself (their phases compile copies), so they come back without an optimizer.
            assert report[path]["optimizer"] is None, report[path]
        else:
            assert report[path]["optimizer"] == "SGD" and report[path]["schedule"] == "LinearWarmup", path
            assert report[path]["iterations"] > 0, path


def _record_run_training(monkeypatch):
    """Replaces `cli.run_training` by a stand-in that records its keyword arguments; returns the record."""
    received = []
    fake = {"dataset": "digits-lt", "imbalance_factor": 20, "method": "ce", "model": "mlp", "epochs": 1,
            "train_seconds": 0.1, "shot_classes": {"many": 1, "medium": 0, "few": 1}, "class_counts": [9, 1],
            "accuracy": {"overall": 50.0, "many": 100.0, "few": 0.0}}
    monkeypatch.setattr(cli, "run_training", lambda **kwargs: received.append(kwargs) or {**fake, "method": kwargs["method"]})
    return received


def test_gbg_group_loss_flag(monkeypatch):
    received = _record_run_training(monkeypatch)
    assert cli.main(["train", "--method", "gbg", "--gbg-group-loss", "class_balanced"]) == 0
    assert received[-1]["gbg_options"] == {"normalization": "loss+", "group_loss": "class_balanced"}
    assert cli.main(["train", "--method", "gbg"]) == 0  # the default, "mean", is not written out
    assert "group_loss" not in received[-1]["gbg_options"]


def test_gbg_weighting_flag(monkeypatch):
    received = _record_run_training(monkeypatch)
    assert cli.main(["train", "--method", "gbg", "--gbg-weighting", "average"]) == 0
    assert received[-1]["gbg_options"] == {"normalization": "loss+", "weighting": "average"}
    assert cli.main(["train", "--method", "gbg"]) == 0  # the default, "min_norm", is not written out
    assert "weighting" not in received[-1]["gbg_options"]
    with pytest.raises(SystemExit):
        cli.main(["train", "--method", "gbg", "--gbg-weighting", "mgda"])


def test_memory_size_flag(monkeypatch, capsys):
    received = _record_run_training(monkeypatch)
    assert cli.main(["train", "--method", "async", "--memory-size", "balanced"]) == 0
    assert received[-1]["async_options"] == {"memory_size": "balanced"}
    assert cli.main(["train", "--method", "async", "--memory-size", "50"]) == 0
    assert received[-1]["async_options"] == {"memory_size": 50}
    assert cli.main(["train", "--method", "async"]) == 0
    assert "async_options" not in received[-1]
    assert cli.main(["train", "--method", "ce", "--memory-size", "50"]) != 0
    assert "--memory-size is a --method async option" in capsys.readouterr().err
    assert len(received) == 3


def test_the_prior_undone_accuracy_is_the_saved_networks_logits_minus_the_log_prior(tmp_path):
    import keras
    import numpy as np

    from keras_longtail import data as lt_data

    path = str(tmp_path / "ce.keras")
    results = cli.run_training(epochs=3, verbose=0, save_model=path)
    loaded = lt_data.load_digits_lt(20)
    network = keras.saving.load_model(path)
    images, labels = zip(*loaded.test.as_numpy_iterator())
    logits = np.asarray(network(np.stack(images), training=False))
    counts = np.asarray(loaded.class_counts, np.float64)
    adjusted = (logits - np.log(counts / counts.sum())).argmax(1)
    labels = np.asarray(labels)
    expected = [round(100 * float((adjusted[labels == c] == c).mean()), 2) for c in range(len(counts))]
    assert results["prior_undone_per_class_accuracy"] == pytest.approx(expected, abs=0.01)
    assert set(results["prior_undone_accuracy"]) == set(results["accuracy"])
    assert results["prior_undone_accuracy"]["overall"] == pytest.approx(np.mean(expected), abs=0.01)
    # a balanced data set has a flat prior: undoing it changes no prediction
    balanced = cli.run_training(epochs=1, imbalance_factor=1, verbose=0)
    assert balanced["prior_undone_per_class_accuracy"] == balanced["per_class_accuracy"]
