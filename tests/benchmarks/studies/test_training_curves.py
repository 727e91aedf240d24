import json

import numpy as np
import pytest

from benchmarks.studies import training_curves


def _write(directory, run, seed, epoch_logs=None):
    directory.mkdir(parents=True, exist_ok=True)
    result = {"run": run, "seed": seed}
    if epoch_logs is not None:
        result["epoch_logs"] = epoch_logs
    (directory / f"{run}-seed{seed}.json").write_text(json.dumps(result))


def _logs(values, key="loss", **extra):
    return [{key: v, **{k: e[i] for k, e in extra.items()}} for i, v in enumerate(values)]


def test_curves_are_the_seed_means_over_the_common_epochs(tmp_path):
    suite = tmp_path / "toy-e60"
    rng = np.random.default_rng(0)
    losses = {0: rng.uniform(size=4).tolist(), 1: rng.uniform(size=3).tolist()}  # seed 1 stopped at epoch 3
    for seed, values in losses.items():
        _write(suite, "gbg", seed, {"fit": _logs(values, gbg_alpha_max=[0.5, 0.6, 0.7, 0.8])})
    _write(suite, "gbg", 2)  # written before results kept epoch_logs: skipped, and said so
    # the dual-phase runs' two fits are one curve, phase one first
    _write(suite, "async", 0, {"phase_one": _logs([3.0, 2.0]), "phase_two": _logs([1.0])})
    _write(suite, "gbg-official", 0, {"fit": _logs([9.0])})  # another run whose name starts alike: not gbg's
    curves, skipped = training_curves.collect(tmp_path, "toy", "e60", ["gbg", "async"], ["loss", "gbg_alpha_max"])
    expected = np.mean([losses[0][:3], losses[1]], axis=0)
    assert curves["gbg"]["loss"]["seeds"] == [0, 1]
    np.testing.assert_allclose(curves["gbg"]["loss"]["mean"], expected, atol=1e-6)
    np.testing.assert_allclose(curves["gbg"]["loss"]["low"], np.minimum(losses[0][:3], losses[1]))
    assert curves["gbg"]["gbg_alpha_max"]["mean"] == pytest.approx([0.5, 0.6, 0.7])
    assert curves["async"] == {"loss": {"seeds": [0], "mean": [3.0, 2.0, 1.0], "low": [3.0, 2.0, 1.0],
                                        "high": [3.0, 2.0, 1.0]}}  # no gbg_alpha_max logged: no curve
    assert skipped == [str(suite / "gbg-seed2.json")]
    assert training_curves.collect(tmp_path, "toy", "e60", ["gbg"], ["loss"], seeds=[1])[0]["gbg"]["loss"][
        "seeds"] == [1]


def test_main_writes_the_plot_and_the_json(tmp_path, capsys):
    _write(tmp_path / "toy-e60", "ce", 0, {"fit": _logs([2.0, 1.5], acc_overall=[0.3, 0.4])})
    output, data = tmp_path / "curves.png", tmp_path / "curves.json"
    training_curves.main(["--results", str(tmp_path), "--suite", "toy", "--runs", "ce", "--metrics",
                          "loss,acc_overall", "--output", str(output), "--json", str(data)])
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(data.read_text())["ce"]["acc_overall"]["mean"] == [0.3, 0.4]


@pytest.mark.parametrize("argv, match", [
    (["--runs", "nothing"], r"Expected results of run 'nothing'"),
    (["--runs", "old"], r"Expected `epoch_logs` in a result of run 'old'.*Received: 1 without"),
    (["--runs", "ce", "--metrics", "acc_overal"], r"Expected every metric.*metrics \['acc_overal'\]; the runs log \['loss'\]"),
    (["--runs", "ce", "--output", "curves.pdf"], r"Expected --output to be a .png file"),
])
def test_bad_input(tmp_path, capsys, argv, match):
    _write(tmp_path / "toy-e60", "ce", 0, {"fit": _logs([2.0])})
    _write(tmp_path / "toy-e60", "old", 0)
    argv = ["--results", str(tmp_path), "--suite", "toy", "--output", str(tmp_path / "c.png")] + argv
    with pytest.raises(SystemExit):
        training_curves.main(argv)
    assert __import__("re").search(match, capsys.readouterr().err.replace("\n", " "))


def test_a_diverged_epoch_stays_a_gap(tmp_path):
    # run_training stores a non-finite log as None (JSON has no NaN): NaN in the curve, None in the JSON
    _write(tmp_path / "toy-e60", "ce", 0, {"fit": _logs([2.0, None, 1.0])})
    _write(tmp_path / "toy-e60", "ce", 1, {"fit": _logs([3.0, 2.0, 2.0])})
    curve = training_curves.collect(tmp_path, "toy", "e60", ["ce"], ["loss"])[0]["ce"]["loss"]
    assert curve["mean"][0] == 2.5 and np.isnan(curve["mean"][1]) and np.isnan(curve["low"][1])
    data = tmp_path / "curves.json"
    training_curves.main(["--results", str(tmp_path), "--suite", "toy", "--runs", "ce", "--metrics", "loss",
                          "--output", str(tmp_path / "c.png"), "--json", str(data)])
    assert json.loads(data.read_text())["ce"]["loss"]["mean"] == [2.5, None, 1.5]
