import json

from benchmarks.studies import depth_synthetic


def test_run_loops_over_seeds_and_variants_and_writes_json_and_markdown(tmp_path, monkeypatch):
    calls = []

    def fake_training(dataset, seed, verbose, **kwargs):  # the training itself is tested in tests/test_cli.py
        calls.append((dataset, seed, kwargs["method"], kwargs.get("gradtail_pivot"), kwargs["epochs"]))
        value = 10.0 + seed + (kwargs["method"] == "gradtail")
        return {"mre": dict.fromkeys(depth_synthetic.MRE_KEYS, value), "train_seconds": 1.0,
                "test_pixel_share_percent": {"mre_lt_20": 100.0 - seed}}

    monkeypatch.setattr(depth_synthetic.recipes, "run_depth_training", fake_training)
    output = tmp_path / "depth.json"
    results = depth_synthetic.run(("baseline", "gradtail"), seeds=(0, 1), output=output, verbose=0,
                                  command="python -m x", epochs=3)
    assert calls == [("synthetic-depth", 0, "ce", None, 3), ("synthetic-depth", 0, "gradtail", -0.5, 3),
                     ("synthetic-depth", 1, "ce", None, 3), ("synthetic-depth", 1, "gradtail", -0.5, 3)]
    saved = json.loads(output.read_text())
    assert saved == json.loads(json.dumps(results)) and saved["command"] == "python -m x"
    assert saved["config"]["epochs"] == 3 and saved["config"]["image_size"] == [128, 320]
    assert saved["variants"]["gradtail"]["summary"]["mre_total"] == {"mean": 11.5, "std": 0.707}
    markdown = output.with_suffix(".md").read_text()
    assert "`python -m x`" in markdown and "Baseline (masked L1)" in markdown and "paper Table 2" in markdown
    assert "+1.00 (+1.00, +1.00)" in markdown
    assert saved["test_pixel_share_percent"] == {"0": {"mre_lt_20": 100.0}, "1": {"mre_lt_20": 99.0}}
    assert "seed 1's test scenes (%): {'mre_lt_20': 99.0}" in markdown
    assert "gradtail" in depth_synthetic.format_table(results)


def _run(values):
    return {"mre": dict(zip(depth_synthetic.MRE_KEYS, values)), "train_seconds": 10.0}


def test_summary_and_per_seed_difference():
    runs = {"baseline": {"0": _run([10, 20, 30, 40, 15]), "1": _run([12, 20, 34, 44, 17])},
            "gradtail": {"0": _run([10, 19, 29, 38, 15]), "1": _run([12, 21, 31, 40, 16])}}
    results = {"config": {**depth_synthetic.SMALL, "image_size": [128, 320]}, "machine": "m", "command": None,
               "variants": {name: {"runs": r, "summary": depth_synthetic.summarize(r)} for name, r in runs.items()}}
    summary = results["variants"]["baseline"]["summary"]
    assert summary["mre_40_60"] == {"mean": 32.0, "std": 2.828} and summary["seeds"] == 2
    markdown = depth_synthetic.format_markdown(results)
    assert "| 32.00 ± 2.83 |" in markdown
    # GradTail − baseline per seed, > 60 m: -2 and -4, mean -3.
    assert "-3.00 (-2.00, -4.00)" in markdown and "+0.00 (-1.00, +1.00)" in markdown
