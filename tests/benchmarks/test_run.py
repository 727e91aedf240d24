import json

import pytest

from benchmarks import run
from keras_longtail import cli


@pytest.mark.slow
def test_suite_writes_json_and_table(tmp_path, capsys):
    run.run_suite("digits-lt", "short", ["ce-wd0", "ce"], seeds=[0, 1], epochs=1, verbose=0, results_dir=tmp_path)
    out_dir = tmp_path / "digits-lt-short"
    files = sorted(p.name for p in out_dir.glob("*.json"))
    assert files == ["ce-seed0.json", "ce-seed1.json", "ce-wd0-seed0.json", "ce-wd0-seed1.json"]
    results = json.loads((out_dir / "ce-seed0.json").read_text())
    assert results["weight_decay"] == run.WEIGHT_DECAY and results["epochs"] == 1
    table = (out_dir / "table.md").read_text()
    assert "| CE (WD=0) | 2 |" in table and "±" in table
    # A second call skips the runs that exist.
    run.run_suite("digits-lt", "short", ["ce"], seeds=[0], epochs=1, verbose=0, results_dir=tmp_path)
    assert "exists, skipped" in capsys.readouterr().out


def test_stage_two_runs_load_the_stage_one_model_of_their_own_seed(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    for seed in (0, 1, 2):
        (models / f"digits-lt-short-ce-seed{seed}.keras").write_text("stand-in")
    monkeypatch.setattr(run, "MODELS", models)
    calls = []

    def fake_run_training(**kwargs):
        calls.append(kwargs)
        return {"accuracy": {"overall": 50.0}, "seed": kwargs["seed"]}

    monkeypatch.setattr(cli, "run_training", fake_run_training)
    monkeypatch.setattr(cli, "format_shot_table", lambda results: "")
    monkeypatch.setattr(run, "write_table", lambda out_dir: "")
    run.run_suite("digits-lt", "short", ["wb"], seeds=[0, 1, 2], epochs=1, verbose=0, results_dir=tmp_path)
    assert [c["stage_one_model"] for c in calls] == [str(models / f"digits-lt-short-ce-seed{s}.keras")
                                                     for s in (0, 1, 2)]
