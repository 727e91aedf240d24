import json

import pytest

from benchmarks import budget_curve


def _write(results_dir, budget, seed, overall, many, medium, cpu=None, wall=100.0, epochs=None):
    folder = results_dir / f"cifar10-lt-{budget}"
    folder.mkdir(parents=True, exist_ok=True)
    result = {"run": "ce", "seed": seed, "epochs": epochs or budget_curve.BUDGETS[budget],
              "accuracy": {"overall": overall, "many": many, "medium": medium}, "train_seconds": wall,
              "machine": "x86_64, 2 cores, 3.11.7"}
    if cpu is not None:
        result["train_cpu_seconds"] = cpu
    (folder / f"ce-seed{seed}.json").write_text(json.dumps(result))


def test_curve_statistics_cpu_fallback_and_discriminative_budget(tmp_path, capsys):
    # 12 epochs: old results without CPU time (estimated as 12 x the median measured CPU s per epoch, 100 here; not
    # wall x cores); 30: below 60 %; 60: >= 60 % over 3 seeds (the answer); 100: higher but dearer. Other runs'
    # files in the folders are ignored.
    for seed, overall in enumerate((34.0, 36.0, 38.0)):
        _write(tmp_path, "short", seed, overall, 45.0, 0.0, wall=900.0)
    for seed in range(3):
        _write(tmp_path, "e30", seed, 55.0, 70.0, 20.0, cpu=3000.0)
        _write(tmp_path, "e60", seed, 59.0 + seed, 75.0, 40.0 + seed, cpu=6000.0 + 600 * seed)
        _write(tmp_path, "e100", seed, 70.0, 80.0, 50.0, cpu=10000.0)
    (tmp_path / "cifar10-lt-e30" / "ce-wd0-seed0.json").write_text("{}")
    assert budget_curve.main(["--results-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "budget_curve.json").read_text())
    budgets = {e["budget"]: e for e in report["budgets"]}
    assert list(budgets) == ["short", "e30", "e60", "e100"]
    assert budgets["short"]["accuracy"]["overall"] == {"mean": 36.0, "std": 2.0}
    assert budgets["short"]["train_cpu_seconds"]["mean"] == 1200.0 and budgets["short"]["cpu_seconds_estimated"] == [
        0, 1, 2]
    assert budgets["e60"]["accuracy"]["medium"] == {"mean": 41.0, "std": 1.0}
    assert budgets["e60"]["train_cpu_seconds"] == {"mean": 6600.0, "std": 600.0}
    assert budgets["e60"]["cpu_seconds_estimated"] == []
    assert report["discriminative_budget"] == "e60"
    assert "discriminative budget: e60 (60 epochs)" in capsys.readouterr().out
    assert (tmp_path / "budget_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_few_seeds_do_not_count_and_the_closest_budget_is_named(tmp_path):
    _write(tmp_path, "short", 0, 35.0, 45.0, 0.0, cpu=1000.0)
    _write(tmp_path, "e30", 0, 58.0, 70.0, 30.0, cpu=2000.0)
    _write(tmp_path, "full", 0, 75.0, 85.0, 60.0, cpu=9000.0)  # one seed only: not yet the answer
    curve = budget_curve.collect(tmp_path)
    entry, reason = budget_curve.discriminative_budget(curve)
    assert entry["budget"] == "full" and "no budget reaches 60 %" in reason and "['full']" in reason
    entry, reason = budget_curve.discriminative_budget(curve, min_seeds=1)
    assert entry["budget"] == "full" and reason.startswith("cheapest")
    entry, _ = budget_curve.discriminative_budget(curve, threshold=50.0, min_seeds=1)
    assert entry["budget"] == "e30"


def test_without_any_measured_cpu_time_the_estimate_is_wall_time_x_cores(tmp_path):
    _write(tmp_path, "short", 0, 35.0, 45.0, 0.0, wall=600.0)
    _write(tmp_path, "e30", 0, 55.0, 65.0, 10.0, wall=1000.0)
    curve = budget_curve.collect(tmp_path)
    assert [e["train_cpu_seconds"]["mean"] for e in curve] == [1200.0, 2000.0]
    assert [e["cpu_seconds_estimated"] for e in curve] == [[0], [0]]


def test_wrong_epochs_are_rejected(tmp_path):
    _write(tmp_path, "e30", 0, 50.0, 60.0, 10.0, cpu=1.0, epochs=12)
    with pytest.raises(ValueError, match="Expected 30 epochs"):
        budget_curve.collect(tmp_path)


def test_the_reference_study_adds_its_budgets_and_a_panel(tmp_path):
    for seed in range(3):
        _write(tmp_path, "e60", seed, 62.0 + seed, 71.0, 28.0, cpu=6000.0)
    reference = {"e60": {"overall": 62.3, "overall_std": 1.2, "last_epoch": 60, "finished": True},
                 "e200": {"overall": 66.7, "overall_std": 0.7, "last_epoch": 190, "finished": False}}
    (tmp_path / "reference_budget_cifar10.json").write_text(json.dumps({"reference": reference, "runs": []}))
    assert budget_curve.main(["--results-dir", str(tmp_path), "--output-dir", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "budget_curve.json").read_text())
    assert report["reference"] == {"source": "reference_budget_cifar10.json", "budgets": reference}
    assert report["discriminative_budget"] == "e60"  # the reference never decides the budget
    from PIL import Image

    with Image.open(tmp_path / "out" / "budget_curve.png") as image:
        wide = image.size
    (tmp_path / "reference_budget_cifar10.json").unlink()
    assert budget_curve.main(["--results-dir", str(tmp_path), "--output-dir", str(tmp_path / "plain")]) == 0
    assert "reference" not in json.loads((tmp_path / "plain" / "budget_curve.json").read_text())
    with Image.open(tmp_path / "plain" / "budget_curve.png") as image:
        assert wide[0] > image.size[0]  # the second panel
