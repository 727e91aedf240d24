import json

from benchmarks import run


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
