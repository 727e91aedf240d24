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
    assert cli.main(["train", "--epochs", "0"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["train", "--method", "nope"])


@pytest.mark.slow
def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "keras_longtail", "train", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--imbalance-factor" in done.stdout


@pytest.mark.slow
def test_real_cifar10_lt_one_short_epoch(cifar10_jpeg_dir, capsys):
    code = cli.main(["train", "--dataset", "cifar10-lt", "--data-dir", cifar10_jpeg_dir, "--epochs", "1",
                     "--steps-per-epoch", "2", "--verbose", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert "cifar10-lt" in out and "few" in out


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
def test_gbg_and_dual_phase_methods(method, extra):
    results = cli.run_training(method=method, epochs=2, verbose=0, **extra)
    assert results["method"] == method and 0 <= results["accuracy"]["overall"] <= 100
    if method == "gbg":
        assert results["num_groups"] == 2 and len(results["groups"]) == 10
        assert (results["gbg_mode"], results["gbg_normalization"]) == ("exact", "none")  # the paper's defaults
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
    assert results["gbg_options"] == {"solve_every": 3} and results["gbg_mode"] == "exact"
    assert cli.main(["train", "--method", "gbg", "--gbg-solve-every", "0", "--epochs", "1", "--verbose", "0"]) == 2
    assert "solve_every" in capsys.readouterr().err


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
