import pytest

from benchmarks.studies import momentum_form
from keras_longtail import recipes


@pytest.mark.parametrize("epochs,steps", [(12, 25), (60, 97), (3, 7)])
def test_drop_epoch_is_the_epoch_whose_steps_first_run_at_the_dropped_rate(epochs, steps):
    schedule = recipes.ldam_schedule(0.1, epochs, steps)
    drop = momentum_form.drop_epoch(epochs, steps)
    before = [float(schedule((drop - 2) * steps + s)) for s in range(steps)]
    during = [float(schedule((drop - 1) * steps + s)) for s in range(steps)]
    assert all(abs(r - 0.1) < 1e-7 for r in before)
    assert abs(during[0] - 0.1) < 1e-7 and during[-1] < 0.001 + 1e-7  # (the x0.0001 drop may land there too)


def test_summarize_means_over_seeds_and_the_rise_after_the_drop():
    runs = [{"momentum_form": "keras", "seed": 0, "loss": [2.0, 1.0, 0.9, 1.5], "accuracy": {"overall": 30.0}},
            {"momentum_form": "keras", "seed": 1, "loss": [2.0, 1.2, 1.3, 1.1], "accuracy": {"overall": 32.0}},
            {"momentum_form": "pytorch", "seed": 0, "loss": [2.0, 1.0, 0.9, 0.8], "accuracy": {"overall": 31.0}}]
    summary = momentum_form.summarize(runs, drop=3)
    assert summary["keras"]["mean_loss"] == [2.0, 1.1, 1.1, 1.3]
    assert summary["keras"]["largest_rise_after_drop"] == [0.5, 0.1]
    assert summary["pytorch"]["largest_rise_after_drop"] == [-0.1]
    assert summary["keras"]["seeds"] == [0, 1] and summary["pytorch"]["test_accuracy"] == [31.0]
    assert summary["keras"]["final_loss"] == [1.5, 1.1]


def test_bad_arguments_fail_before_training(tmp_path):
    with pytest.raises(SystemExit):
        momentum_form.main(["--data-dir", str(tmp_path), "--output", str(tmp_path / "x.json")])
    (tmp_path / "train").mkdir()
    with pytest.raises(SystemExit):
        momentum_form.main(["--data-dir", str(tmp_path), "--output", str(tmp_path / "x.json"), "--forms", "adam"])
