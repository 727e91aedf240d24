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


@pytest.mark.slow
def test_status_rerun_and_resume_after_an_interruption(tmp_path, monkeypatch):
    state = tmp_path / "state"
    args = dict(epochs=4, verbose=0, results_dir=tmp_path, state_dir=state)
    assert run.run_status("digits-lt", "short", ["ce"], [0], tmp_path, state) == [
        "digits-lt-short ce seed 0: pending"]
    record = cli._Progress.record

    def interrupted(self, phase, epoch, *rest):
        record(self, phase, epoch, *rest)
        if epoch == 2:
            raise KeyboardInterrupt  # a kill just after the epoch-2 checkpoint

    monkeypatch.setattr(cli._Progress, "record", interrupted)
    try:
        run.run_suite("digits-lt", "short", ["ce"], seeds=[0], **args)
    except KeyboardInterrupt:
        pass
    assert run.run_status("digits-lt", "short", ["ce"], [0], tmp_path, state) == [
        "digits-lt-short ce seed 0: partial (fit epoch 2 of 4)"]
    monkeypatch.setattr(cli._Progress, "record", record)
    run.run_suite("digits-lt", "short", ["ce"], seeds=[0], **args)
    results = json.loads((tmp_path / "digits-lt-short" / "ce-seed0.json").read_text())
    assert results["resumed_from"] == {"fit": {"epoch": 2, "epochs": 4}}
    assert json.loads((state / "digits-lt-short" / "ce-seed0" / "progress.json").read_text())["phases"] == {
        "fit": {"epoch": 4, "epochs": 4}}
    assert run.run_status("digits-lt", "short", ["ce"], [0], tmp_path, state)[0].startswith(
        "digits-lt-short ce seed 0: done (")
    # --rerun trains afresh (no resume) and replaces the JSON.
    (tmp_path / "digits-lt-short" / "ce-seed0.json").write_text(json.dumps({"stale": True}))
    run.run_suite("digits-lt", "short", ["ce"], seeds=[0], rerun=True, **args)
    results = json.loads((tmp_path / "digits-lt-short" / "ce-seed0.json").read_text())
    assert results["resumed_from"] == {} and "stale" not in results


def test_resumed_training_is_faithful_to_the_checkpoint(tmp_path):
    # A finished run resumed from its state trains no further epoch and evaluates the checkpointed weights.
    first = cli.run_training("digits-lt", epochs=2, verbose=0, state_dir=str(tmp_path))
    again = cli.run_training("digits-lt", epochs=2, verbose=0, state_dir=str(tmp_path))
    assert again["per_class_accuracy"] == first["per_class_accuracy"]
    assert again["resumed_from"] == {"fit": {"epoch": 2, "epochs": 2}}
