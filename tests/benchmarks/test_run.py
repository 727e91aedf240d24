import json

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import run
from keras_longtail import recipes


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


def _record_runs(monkeypatch):
    """Replaces training by a stand-in; returns the list that receives each run's `run_training` arguments."""
    calls = []

    def fake_run_training(**kwargs):
        calls.append(kwargs)
        return {"accuracy": {"overall": 50.0}, "seed": kwargs["seed"]}

    monkeypatch.setattr(recipes, "run_training", fake_run_training)
    monkeypatch.setattr(recipes, "format_shot_table", lambda results: "")
    monkeypatch.setattr(run, "write_table", lambda out_dir: "")
    return calls


def test_stage_two_runs_load_the_stage_one_model_of_their_own_seed(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    for seed in (0, 1, 2):
        (models / f"digits-lt-short-ce-seed{seed}.keras").write_text("stand-in")
    monkeypatch.setattr(run, "MODELS", models)
    calls = _record_runs(monkeypatch)
    run.run_suite("digits-lt", "short", ["wb"], seeds=[0, 1, 2], epochs=1, verbose=0, results_dir=tmp_path)
    assert [c["stage_one_model"] for c in calls] == [str(models / f"digits-lt-short-ce-seed{s}.keras")
                                                     for s in (0, 1, 2)]


def test_dual_phase_runs_share_the_phase_one_of_their_own_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "MODELS", tmp_path / "models")
    calls = _record_runs(monkeypatch)
    run.run_suite("digits-lt", "short", ["async", "async-p2lr"], seeds=[0, 1], epochs=1, verbose=0,
                  results_dir=tmp_path)
    expected = [str(tmp_path / "models" / f"digits-lt-short-async-seed{s}-phase-one") for s in (0, 1)]
    assert [c["phase_one_dir"] for c in calls] == [expected[0], expected[1], expected[0], expected[1]]
    assert all("phase_one_from" not in c for c in calls)


@pytest.mark.slow
def test_status_rerun_and_resume_after_an_interruption(tmp_path, monkeypatch):
    state = tmp_path / "state"
    args = dict(epochs=4, verbose=0, results_dir=tmp_path, state_dir=state)
    assert run.run_status("digits-lt", "short", ["ce"], [0], tmp_path, state) == [
        "digits-lt-short ce seed 0: pending"]
    record = recipes.Progress.record

    def interrupted(self, phase, epoch, epochs, logs=None):
        record(self, phase, epoch, epochs, logs)
        if epoch == 2:
            raise KeyboardInterrupt  # a kill just after the epoch-2 checkpoint

    monkeypatch.setattr(recipes.Progress, "record", interrupted)
    try:
        run.run_suite("digits-lt", "short", ["ce"], seeds=[0], **args)
    except KeyboardInterrupt:
        pass
    before = recipes.Progress(str(state / "digits-lt-short" / "ce-seed0")).epoch_logs["fit"]
    assert run.run_status("digits-lt", "short", ["ce"], [0], tmp_path, state) == [
        f"digits-lt-short ce seed 0: partial (fit epoch 2 of 4 at loss {before[1]['loss']:.4g})"]
    monkeypatch.setattr(recipes.Progress, "record", record)
    run.run_suite("digits-lt", "short", ["ce"], seeds=[0], **args)
    results = json.loads((tmp_path / "digits-lt-short" / "ce-seed0.json").read_text())
    assert results["resumed_from"] == {"fit": {"epoch": 2, "epochs": 4}}
    # the training curve spans the interruption: the killed call's two epochs, then the resumed call's two
    logs = results["epoch_logs"]["fit"]
    assert len(before) == 2 and len(logs) == 4 and logs[:2] == before
    assert all(np.isfinite(epoch["loss"]) and 0 <= epoch["acc_overall"] <= 1 for epoch in logs)
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
    first = recipes.run_training("digits-lt", epochs=2, verbose=0, state_dir=str(tmp_path))
    again = recipes.run_training("digits-lt", epochs=2, verbose=0, state_dir=str(tmp_path))
    assert again["per_class_accuracy"] == first["per_class_accuracy"]
    assert again["resumed_from"] == {"fit": {"epoch": 2, "epochs": 2}}


def test_jit_and_mixed_precision_reach_training_and_are_restored(tmp_path, monkeypatch):
    import keras

    seen = []

    def fake_run_training(**kwargs):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        seen.append((keras.config.dtype_policy().name, model.dtype_policy.name, model.jit_compile))
        return {"accuracy": {"overall": 50.0}, "seed": kwargs["seed"]}

    monkeypatch.setattr(recipes, "run_training", fake_run_training)
    monkeypatch.setattr(recipes, "format_shot_table", lambda results: "")
    monkeypatch.setattr(run, "write_table", lambda out_dir: "")
    monkeypatch.setattr(run, "MODELS", tmp_path / "models")
    options = dict(epochs=1, verbose=0, results_dir=tmp_path, state_dir=tmp_path / "state")
    run.run_suite("digits-lt", "short", ["ce"], seeds=[0], jit_compile=True, mixed_precision="bfloat16", **options)
    run.run_suite("digits-lt", "short", ["ce-wd0"], seeds=[0], **options)
    assert seen == [("mixed_bfloat16", "mixed_bfloat16", True), ("float32", "float32", False)]
    assert keras.config.dtype_policy().name == "float32"
    results = json.loads((tmp_path / "digits-lt-short" / "ce-seed0.json").read_text())
    assert results["jit_compile"] is True and results["mixed_precision"] == "bfloat16"
    assert "jit_compile" not in json.loads((tmp_path / "digits-lt-short" / "ce-wd0-seed0.json").read_text())


def _fit_steps_per_execution(steps_per_epoch):
    """The steps per call of a small model fitted for one epoch of `steps_per_epoch` steps, and its optimizer's
    step count."""
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    data = tf.data.Dataset.from_tensor_slices((np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32")))
    model.fit(data.repeat().batch(2), epochs=1, steps_per_epoch=steps_per_epoch, verbose=0)
    return model.steps_per_execution, int(model.optimizer.iterations)


def test_steps_per_execution_reaches_fit_and_the_json(tmp_path, monkeypatch):
    seen = []

    def fake_run_training(**kwargs):
        seen.append(_fit_steps_per_execution(12))
        return {"accuracy": {"overall": 50.0}, "seed": kwargs["seed"]}

    monkeypatch.setattr(recipes, "run_training", fake_run_training)
    monkeypatch.setattr(recipes, "format_shot_table", lambda results: "")
    monkeypatch.setattr(run, "write_table", lambda out_dir: "")
    monkeypatch.setattr(run, "MODELS", tmp_path / "models")
    for value in ("4", "epoch"):
        assert run.main(["--suite", "digits-lt", "--runs", "ce", "--steps-per-execution", value, "--verbose", "0",
                         "--rerun", "--results-dir", str(tmp_path), "--state-dir", str(tmp_path / "state")]) == 0
        results = json.loads((tmp_path / "digits-lt-short" / "ce-seed0.json").read_text())
        assert results["steps_per_execution"] == (4 if value == "4" else "epoch")
        assert results["jit_compile"] is False
    assert seen == [(4, 12), (12, 12)]  # the steps per call, and exactly 12 steps trained
    assert _fit_steps_per_execution(12) == (1, 12)  # restored on exit


def test_steps_per_execution_that_does_not_divide_the_epoch_is_an_error():
    # Keras itself would round 12 steps up to 15 at 5 per call.
    with run.training_options(steps_per_execution=5):
        with pytest.raises(ValueError, match="steps_per_execution=5 for steps_per_epoch=12"):
            _fit_steps_per_execution(12)


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "step"])
def test_training_options_rejects_a_bad_steps_per_execution(value):
    with pytest.raises(ValueError, match="Expected `steps_per_execution` to be an integer >= 1 or 'epoch'"):
        with run.training_options(steps_per_execution=value):
            pass


@pytest.mark.parametrize("value", ["0", "x"])
def test_main_rejects_a_bad_steps_per_execution_before_training(value, capsys):
    with pytest.raises(SystemExit):
        run.main(["--suite", "digits-lt", "--steps-per-execution", value])
    assert "expected an integer >= 1 or 'epoch'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(recipes.METHODS))
def test_one_execution_per_epoch_changes_no_result(method):
    # Every registered method's training (its in-step state, callbacks, per-epoch checkpoints, each of its fits)
    # is the same with a whole epoch per call of the compiled function as with one step per call.
    results = []
    for steps_per_execution in (1, "epoch"):
        with run.training_options(steps_per_execution=steps_per_execution):
            results.append(recipes.run_training("digits-lt", method=method, epochs=2, verbose=0, seed=0))
    assert results[1]["per_class_accuracy"] == results[0]["per_class_accuracy"]
    for phase, logs in results[0]["epoch_logs"].items():
        np.testing.assert_allclose([e["loss"] for e in results[1]["epoch_logs"][phase]],
                                   [e["loss"] for e in logs], rtol=1e-5)


def test_training_options_rejects_an_unknown_precision():
    with pytest.raises(ValueError, match="Expected `mixed_precision` in"):
        with run.training_options(mixed_precision="int8"):
            pass


@pytest.mark.slow
def test_jit_and_bfloat16_train_for_real(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "MODELS", tmp_path / "models")
    run.run_suite("digits-lt", "short", ["ce"], seeds=[0], epochs=1, verbose=0, results_dir=tmp_path,
                  state_dir=tmp_path / "state", jit_compile=True, mixed_precision="bfloat16",
                  steps_per_execution="epoch")
    results = json.loads((tmp_path / "digits-lt-short" / "ce-seed0.json").read_text())
    assert results["accuracy"]["overall"] > 20.0  # 10 classes: above chance after one epoch
    assert results["steps_per_execution"] == "epoch"


def _fake_jobs(monkeypatch, tmp_path, fail=()):
    """Replaces each job's process by a short Python one that logs its start and end times and writes a JSON."""
    import sys

    def command(suite, budget, label, seed, options):
        code = (f"import json, pathlib, sys, time; t = time.time(); time.sleep(0.3); "
                f"open({str(tmp_path / 'times.txt')!r}, 'a').write('{label} {seed} %f %f\\n' % (t, time.time())); "
                f"pathlib.Path({options['results-dir']!r}, '{suite}-{budget}').mkdir(parents=True, exist_ok=True); "
                f"pathlib.Path({options['results-dir']!r}, '{suite}-{budget}', '{label}-seed{seed}.json').write_text("
                f"json.dumps({{'run': '{label}', 'seed': {seed}, 'accuracy': {{'overall': 50.0}}, 'dataset': '{suite}', "
                f"'imbalance_factor': 20, 'model': 'mlp', 'epochs': 1, 'batch_size': 32, 'machine': 'test', "
                f"'options': {json.dumps(options)!r}}})) if {(label, seed) not in fail} else None; print('trained'); "
                f"sys.exit({1 if (label, seed) in fail else 0})")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(run, "_job_command", command)


def _intervals(tmp_path):
    rows = [line.split() for line in (tmp_path / "times.txt").read_text().splitlines()]
    return {(label, int(seed)): (float(start), float(end)) for label, seed, start, end in rows}


def test_parallel_runs_at_most_n_at_once_and_stage_two_after_its_stage_one(tmp_path, monkeypatch):
    _fake_jobs(monkeypatch, tmp_path)
    labels = ("wb", "ce", "ce-wd0", "async-p2lr", "async")
    codes = run.run_parallel("digits-lt", "short", list(labels), [0, 1], parallel=3,
                             results_dir=tmp_path / "results", state_dir=tmp_path / "state", poll_seconds=0.02,
                             epochs=1, verbose=0, jit=True, mixed_precision="bfloat16", rerun=False)
    assert codes == {(label, seed): 0 for label in labels for seed in (0, 1)}
    intervals = _intervals(tmp_path)
    for seed in (0, 1):
        assert intervals[("wb", seed)][0] >= intervals[("ce", seed)][1]  # stage two after its stage one
        assert intervals[("async-p2lr", seed)][0] >= intervals[("async", seed)][1]  # phase II after its phase I
    events = sorted([(start, 1) for start, _ in intervals.values()] + [(end, -1) for _, end in intervals.values()])
    running = [sum(delta for _, delta in events[: i + 1]) for i in range(len(events))]
    assert max(running) <= 3
    assert max(running) >= 2  # they did overlap
    options = json.loads(json.loads((tmp_path / "results" / "digits-lt-short" / "ce-seed1.json").read_text())[
        "options"])
    assert options["jit"] is True and options["mixed-precision"] == "bfloat16" and options["epochs"] == 1
    assert (tmp_path / "state" / "digits-lt-short" / "ce-seed0.log").read_text() == "trained\n"


def test_parallel_reports_a_failed_run_and_main_exits_nonzero(tmp_path, monkeypatch, capsys):
    _fake_jobs(monkeypatch, tmp_path, fail={("ce", 1)})
    code = run.main(["--suite", "digits-lt", "--runs", "ce", "--seeds", "0,1", "--parallel", "2",
                     "--results-dir", str(tmp_path / "results"), "--state-dir", str(tmp_path / "state")])
    assert code == 1
    captured = capsys.readouterr()
    assert "ce seed 1: FAILED (exit 1" in captured.out and "failed: ce seed 1" in captured.err
    assert "| CE + WD | 1 |" in captured.out  # the table over what was written


def test_job_command_passes_the_options_through():
    command = run._job_command("cifar10-lt", "full", "gbg", 2, {"epochs": None, "verbose": 0, "rerun": False,
                                                                 "jit": True, "mixed-precision": "float16",
                                                                 "state-dir": "/s"})
    assert command[1:] == ["-m", "benchmarks.run", "--suite", "cifar10-lt", "--budget", "full", "--runs", "gbg",
                           "--seeds", "2", "--verbose", "0", "--jit", "--mixed-precision", "float16",
                           "--state-dir", "/s"]
    assert run.main(["--suite", "digits-lt", "--jit", "--mixed-precision", "float16", "--status"]) == 0


@pytest.mark.slow
def test_parallel_trains_real_processes(tmp_path, monkeypatch):
    # Two real `python -m benchmarks.run` processes (digits-lt, one epoch, XLA) side by side.
    monkeypatch.setenv("KERAS_LONGTAIL_BENCHMARK_MODELS", str(tmp_path / "models"))
    code = run.main(["--suite", "digits-lt", "--runs", "ce,ce-wd0", "--epochs", "1", "--parallel", "2", "--jit",
                     "--verbose", "0", "--results-dir", str(tmp_path / "results"),
                     "--state-dir", str(tmp_path / "state")])
    assert code == 0
    for label in ("ce", "ce-wd0"):
        results = json.loads((tmp_path / "results" / "digits-lt-short" / f"{label}-seed0.json").read_text())
        assert results["epochs"] == 1 and results["jit_compile"] is True and results["mixed_precision"] is None
        assert results["accuracy"]["overall"] > 20.0


def test_every_run_is_a_registered_method_with_known_options():
    for label, (kwargs, _) in run.RUNS.items():
        assert kwargs["method"] in recipes.METHODS, label
    assert {kwargs["method"] for kwargs, _ in run.RUNS.values()} == set(recipes.METHODS)  # each method has a run
    assert run.WEIGHT_DECAY == recipes.WEIGHT_DECAY


def test_register_run_rejects_an_unregistered_method_or_an_unknown_option(monkeypatch):
    monkeypatch.setattr(run, "RUNS", dict(run.RUNS))
    with pytest.raises(ValueError, match=r"Expected `method` in .* Received: method='focal'"):
        run.register_run("focal", {"method": "focal"}, [("Focal", "accuracy")])
    with pytest.raises(ValueError, match=r"Received: \['gala_tau'\]"):
        run.register_run("gala-tau", {"method": "gala", "gala_tau": 2.0}, [("GALA", "accuracy")])
    run.register_run("gala-official-wd0", {"method": "gala", "gala_accumulation": "official", "weight_decay": 0.0},
                     [("GALA official (WD=0)", "accuracy")])
    assert "gala-official-wd0" in run.RUNS


def test_status_of_a_run_killed_before_its_first_epoch(tmp_path):
    # GBG keeps its grouping in progress.json before the first epoch; a kill then leaves no epoch recorded.
    state = tmp_path / "state"
    recipes.Progress(str(state / "digits-lt-short" / "gbg-seed0")).keep("gbg_grouping", {"groups": [0, 1]})
    assert run.run_status("digits-lt", "short", ["gbg"], [0], tmp_path, state) == [
        "digits-lt-short gbg seed 0: partial (started, no epoch done)"]
