import importlib.util
import json

import numpy as np
import pytest

from benchmarks.studies import jax_vs_tensorflow


def test_an_unknown_network_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        jax_vs_tensorflow.main(["--models", "models.mlp,models.resnet18", "--output", str(tmp_path / "x.json")])
    assert "Expected --models from" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_compare_against_hand_computed_measures():
    initial = [np.zeros((2, 2), "float32"), np.zeros(3, "float32")]
    reference = ([np.array([[1.0, -4.0]]), np.array([[2.0, 2.0]])], [np.ones((2, 2)), np.zeros(3)])
    other = ([np.array([[1.0, -3.0]]), np.array([[2.0, 2.0]])], [np.ones((2, 2)), np.array([0.0, 0.0, 2.0])])
    result = jax_vs_tensorflow.compare(reference, other, initial)
    assert result["inference"] == pytest.approx(1.0 / 4.0)
    assert result["training"] == 0.0
    assert result["step"] == pytest.approx(2.0 / 2.0)  # ||(0,0,0,0,0,0,2)|| / ||(1,1,1,1,0,0,0)||
    assert result["step_cosine"] == pytest.approx(4.0 / (np.sqrt(8.0) * 2.0))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax (the `test` extra)")
def test_the_mlp_agrees_across_backends_and_the_report_is_written(tmp_path):
    output = tmp_path / "report.json"
    jax_vs_tensorflow.main(["--models", "models.mlp", "--output", str(output)])
    report = json.loads(output.read_text())
    mlp = report["models"]["models.mlp"]
    assert set(report["models"]) == {"models.mlp"}
    assert mlp["inference"] < 1e-4 and mlp["training"] < 1e-4 and mlp["step"] < 1e-2
    assert mlp["step_cosine"] > 0.999
    rounding = mlp["float32_vs_float64"]  # float32 against float64 on TensorFlow: rounding only, not zero
    assert 0.0 < rounding["inference"] < 1e-5 and 0.0 < rounding["step"] < 1e-3
    assert report["command"].endswith("--models models.mlp --output " + str(output))
